# TCL on context59 (official segmentation/configs/_base_/datasets/pascal_context59.py).
_base_ = ['../_base_/datasets/context59.py', '../_base_/tcl.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/context59.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
