# SegEarth-OV on uavid (official cfg_uavid.py; class file cls_uavid.txt).
_base_ = ['../_base_/datasets/rs_uavid.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/uavid.txt',
    prob_thd=0.3)
