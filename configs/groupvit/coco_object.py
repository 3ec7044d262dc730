# GroupViT on coco_object (official segmentation/configs/_base_/datasets/coco.py).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/groupvit.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/coco_object.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
