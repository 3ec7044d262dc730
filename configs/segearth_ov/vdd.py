# SegEarth-OV on vdd (official cfg_vdd.py; class file cls_vdd.txt).
_base_ = ['../_base_/datasets/rs_vdd.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/vdd.txt',
    prob_thd=0.3)
