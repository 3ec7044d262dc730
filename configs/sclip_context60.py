# SCLIP on context60 (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/context60.py']
model = dict(
    class_names='{{fileDirname}}/class_names/context60.txt',
    logit_scale=50,
    prob_thd=0.1)
