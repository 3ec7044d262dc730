# GEM on voc21, ClearCLIP's benchmark settings (official cfg_voc21).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/clearclip/voc21.txt',
    prob_thd=0.5)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
