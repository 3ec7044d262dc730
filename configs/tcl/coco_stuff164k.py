# TCL on coco_stuff164k (official segmentation/configs/_base_/datasets/stuff.py).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/tcl.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/coco_stuff164k.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
