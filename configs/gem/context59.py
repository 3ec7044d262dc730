# GEM on context59, ClearCLIP's benchmark settings (official cfg_context59).
_base_ = ['../_base_/datasets/context59.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context59.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
