# Trident on context59 (official cfg_context59.py @ a93b346: short side 576).
_base_ = ['../_base_/datasets/context59.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context59.txt',
    method=dict(coarse_thresh=0.15))
test_pipeline = {{_base_.pipeline_576}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
