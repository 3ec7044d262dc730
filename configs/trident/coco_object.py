# Trident on coco_object (official cfg_coco_object.py @ a93b346: short side 448).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/proxyclip/coco_object.txt',
    prob_thd=0.25,
    method=dict(coarse_thresh=0.25))
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
