# SCLIP on coco_stuff164k (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/coco_stuff164k.py']
model = dict(
    class_names='{{fileDirname}}/class_names/coco_stuff.txt',
    logit_scale=40)
