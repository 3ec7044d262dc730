# TCL on voc20 (official segmentation/configs/_base_/datasets/pascal_voc12_20.py).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/tcl.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/voc20.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
