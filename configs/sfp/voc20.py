# SFP on voc20 (official cfg_voc20.py).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/sfp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/sfp/voc20.txt')
