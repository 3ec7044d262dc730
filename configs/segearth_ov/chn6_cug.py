# SegEarth-OV on chn6_cug (official cfg_chn6-cug.py; class file cls_chn6-cug.txt).
_base_ = ['../_base_/datasets/rs_chn6_cug.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/chn6_cug.txt',
    prob_thd=0.8)
