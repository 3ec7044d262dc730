# SegEarth-OV on openearthmap (official cfg_openearthmap.py; class file cls_openearthmap.txt).
_base_ = ['../_base_/datasets/rs_openearthmap.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/openearthmap.txt',
    prob_thd=0.1)
