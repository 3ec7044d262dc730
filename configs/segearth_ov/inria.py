# SegEarth-OV on inria (official cfg_inria.py; class file cls_inria.txt).
_base_ = ['../_base_/datasets/rs_inria.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/inria.txt',
    prob_thd=0.6)
