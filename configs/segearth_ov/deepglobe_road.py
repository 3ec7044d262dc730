# SegEarth-OV on deepglobe_road (official cfg_deepglobe_road.py; class file cls_roadval.txt).
_base_ = ['../_base_/datasets/rs_deepglobe_road.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/deepglobe_road.txt',
    prob_thd=0.7)
