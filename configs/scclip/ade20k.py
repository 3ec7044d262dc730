# SC-CLIP on ade20k (official cfg_ade20k).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/scclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade20k.txt')
