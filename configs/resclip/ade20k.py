# ResCLIP on ade20k (official cfg_ade20k).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade20k.txt',
    method=dict(temp_thd=0.25, rcs_weights=(2.0, 0.3), sfr_weights=(2.1, 0.7)))
