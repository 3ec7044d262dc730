# ResCLIP on ade847: its ade20k settings with the ade847 vocabulary (ours, not official: no official ade847 config).
_base_ = ['../_base_/datasets/ade847.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade847.txt',
    method=dict(temp_thd=0.25, rcs_weights=(2.0, 0.3), sfr_weights=(2.1, 0.7)))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/ade847.py)
