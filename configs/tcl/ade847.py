# TCL on ade847: its ade20k settings with the ade847 vocabulary (ours, not official: no official ade847 config;
# no background class; one name per class, the first of each line of class_names/ade847.txt).
_base_ = ['../_base_/datasets/ade847.py', '../_base_/tcl.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/ade847.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/ade847.py)
