# SCLIP on ade847: its ade20k settings with the ade847 vocabulary (ours, not official: no official ade847 config).
_base_ = ['./_base_/sclip.py', './_base_/datasets/ade847.py']
model = dict(
    class_names='{{fileDirname}}/class_names/ade847.txt',
    logit_scale=40)
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/ade847.py)
