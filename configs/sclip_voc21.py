# SCLIP on voc21 (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/voc21.py']
model = dict(
    class_names='{{fileDirname}}/class_names/voc21.txt',
    logit_scale=65,
    prob_thd=0.1,
    area_thd=0.1)
