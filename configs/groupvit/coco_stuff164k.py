# GroupViT on coco_stuff164k (no GroupViT config: TCL's dataset config (same resize and windows), no background class).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/groupvit.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/coco_stuff164k.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
