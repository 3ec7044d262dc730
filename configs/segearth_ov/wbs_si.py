# SegEarth-OV on wbs_si (official cfg_wbs-si.py; class file cls_wbs-si.txt).
_base_ = ['../_base_/datasets/rs_wbs_si.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/wbs_si.txt',
    prob_thd=0.6)
