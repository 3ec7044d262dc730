# SegEarth-OV on whu_aerial (official cfg_whu_aerial.py; class file cls_whu.txt).
_base_ = ['../_base_/datasets/rs_whu_aerial.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/whu_aerial.txt',
    prob_thd=0.6)
