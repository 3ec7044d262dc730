# ResCLIP on context59 (official cfg_context59).
_base_ = ['../_base_/datasets/context59.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context59.txt',
    method=dict(temp_thd=0.25, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
