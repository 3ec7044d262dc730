# ResCLIP on context459: its context59 settings with the context459 vocabulary (ours, not official: no official context459 config).
_base_ = ['../_base_/datasets/context459.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context459.txt',
    method=dict(temp_thd=0.25, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
