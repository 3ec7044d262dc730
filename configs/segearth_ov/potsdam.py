# SegEarth-OV on potsdam (official cfg_potsdam.py; class file cls_potsdam.txt).
_base_ = ['../_base_/datasets/rs_potsdam.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/potsdam.txt',
    bg_idx=5,
    prob_thd=0.1)
