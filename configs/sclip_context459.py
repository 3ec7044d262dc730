# SCLIP on context459: its context59 settings with the context459 vocabulary (ours, not official: no official context459 config).
_base_ = ['./_base_/sclip.py', './_base_/datasets/context459.py']
model = dict(
    class_names='{{fileDirname}}/class_names/context459.txt',
    logit_scale=40)
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
