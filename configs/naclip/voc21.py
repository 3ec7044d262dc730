# NACLIP on voc21 (official cfg_voc21, whole image).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/naclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc21.txt',
    prob_thd=0.1,
    slide_crop=0)
