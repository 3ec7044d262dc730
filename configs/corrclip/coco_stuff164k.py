# CorrCLIP on coco_stuff164k (official cfg_coco_stuff164k.py).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/coco_stuff.txt',
    region_masks=dict(root='data/region_masks/coco'))
test_pipeline = {{_base_.pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
