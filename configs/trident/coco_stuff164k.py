# Trident on coco_stuff164k (official cfg_coco_stuff164k.py @ a93b346: short side 448).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt',
    method=dict(coarse_thresh=0.05))
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
