# SegEarth-OV on xbd_pre (official cfg_xBD.py; class file cls_xBD.txt).
_base_ = ['../_base_/datasets/rs_xbd_pre.py', '../_base_/segearth_ov.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/segearth_ov/xbd_pre.txt',
    method=dict(cls_token_lambda=0),   # official: no [CLS] bias subtraction on xBD
    prob_thd=0.0)
