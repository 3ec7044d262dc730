# SFP on voc21 (official cfg_voc21.py).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/sfp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/sfp/voc21.txt',
    area_thd=0.1,
    logit_scale=50,
    prob_thd=0.15)
