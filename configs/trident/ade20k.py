# Trident on ade20k (official cfg_ade20k.py @ a93b346: short side 576).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade20k.txt',
    method=dict(coarse_thresh=0.05, refine_neg_cos=False))
test_pipeline = {{_base_.pipeline_576}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
