# SCLIP on ade20k (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/ade20k.py']
model = dict(
    class_names='{{fileDirname}}/class_names/ade20k.txt',
    logit_scale=40)
