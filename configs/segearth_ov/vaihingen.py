# SegEarth-OV on vaihingen (official cfg_vaihingen.py; class file cls_vaihingen.txt).
_base_ = ['../_base_/datasets/rs_vaihingen.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/vaihingen.txt',
    bg_idx=5,
    prob_thd=0.1)
