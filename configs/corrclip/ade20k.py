# CorrCLIP on ade20k (official cfg_ade20k.py).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/ade20k.txt',
    region_masks=dict(root='data/region_masks/ade'))
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
