# SegEarth-OV on isaid (official cfg_iSAID.py; class file cls_iSAID.txt).
_base_ = ['../_base_/datasets/rs_isaid.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/isaid.txt',
    prob_thd=0.4)
