# CorrCLIP on cityscapes (official cfg_city_scapes.py).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/city_scapes.txt',
    region_masks=dict(root='data/region_masks/city'),
    slide_crop=224,
    slide_stride=112)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
