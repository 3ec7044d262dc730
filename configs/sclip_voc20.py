# SCLIP on voc20 (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/voc20.py']
model = dict(
    class_names='{{fileDirname}}/class_names/voc20.txt',
    logit_scale=40)
