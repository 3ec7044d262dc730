# TCL on ade20k (official segmentation/configs/_base_/datasets/ade20k.py).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/tcl.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/ade20k.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
