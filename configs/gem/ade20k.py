# GEM on ade20k, ClearCLIP's benchmark settings (official cfg_ade20k).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade20k.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
