# SegEarth-OV on spacenet_road (official cfg_spacenet_road.py; class file cls_roadval.txt).
_base_ = ['../_base_/datasets/rs_spacenet_road.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/spacenet_road.txt',
    prob_thd=0.7)
