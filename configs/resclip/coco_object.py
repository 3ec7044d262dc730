# ResCLIP on coco_object (official cfg_coco_object).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_object.txt',
    prob_thd=0.1,
    method=dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
