# GEM on voc20, ClearCLIP's benchmark settings (official cfg_voc20).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/clearclip/voc20.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
