# SegEarth-OV on udd5 (official cfg_udd5.py; class file cls_udd5.txt).
_base_ = ['../_base_/datasets/rs_udd5.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/udd5.txt',
    bg_idx=4,
    prob_thd=0.4)
