# ResCLIP on voc20 (official cfg_voc20, whole image).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc20.txt',
    slide_crop=0,
    method=dict(temp_thd=0.1, rcs_weights=(2.0, 0.6), sfr_weights=(2.1, 0.6)))
