# ResCLIP on voc21 (official cfg_voc21, whole image).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc21.txt',
    prob_thd=0.1,
    slide_crop=0,
    method=dict(temp_thd=0.5, rcs_weights=(2.0, 0.3), sfr_weights=(2.2, 0.7)))
