# SegEarth-OV on loveda (official cfg_loveda.py; class file cls_loveda.txt).
_base_ = ['../_base_/datasets/rs_loveda.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/loveda.txt',
    prob_thd=0.3)
