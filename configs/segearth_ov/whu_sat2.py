# SegEarth-OV on whu_sat2 (official cfg_whu_sat_II.py; class file cls_whu.txt).
_base_ = ['../_base_/datasets/rs_whu_sat2.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/whu_sat2.txt',
    prob_thd=0.7)
