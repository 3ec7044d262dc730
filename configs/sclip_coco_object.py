# SCLIP on coco_object (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/coco_object.py']
model = dict(
    class_names='{{fileDirname}}/class_names/coco_object.txt',
    logit_scale=50,
    prob_thd=0.1)
