# SFP on coco_object (official cfg_coco_object.py).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/sfp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_object.txt',
    logit_scale=55,
    prob_thd=0.35)
