# SCLIP on context59 (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/context59.py']
model = dict(
    class_names='{{fileDirname}}/class_names/context59.txt',
    logit_scale=40)
