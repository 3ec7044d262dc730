# SCLIP on cityscapes (per-dataset settings: docs/PROTOCOL.md).
_base_ = ['./_base_/sclip.py', './_base_/datasets/cityscapes.py']
model = dict(
    class_names='{{fileDirname}}/class_names/city_scapes.txt',
    logit_scale=40)
