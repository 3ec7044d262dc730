# ResCLIP on context60 (official cfg_context60).
_base_ = ['../_base_/datasets/context60.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context60.txt',
    prob_thd=0.1,
    method=dict(temp_thd=0.3, rcs_weights=(2.0, 0.3), sfr_weights=(1.8, 0.7)))
