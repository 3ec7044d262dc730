# GEM on context60, ClearCLIP's benchmark settings (official cfg_context60).
_base_ = ['../_base_/datasets/context60.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context60.txt',
    prob_thd=0.15)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
