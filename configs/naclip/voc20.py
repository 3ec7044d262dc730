# NACLIP on voc20 (official cfg_voc20, whole image).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/naclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc20.txt',
    slide_crop=0)
