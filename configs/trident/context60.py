# Trident on context60 (official cfg_context60.py @ a93b346: short side 576).
_base_ = ['../_base_/datasets/context60.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context60.txt',
    prob_thd=0.15,
    method=dict(coarse_thresh=0.15))
test_pipeline = {{_base_.pipeline_576}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
