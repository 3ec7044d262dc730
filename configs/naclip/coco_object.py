# NACLIP on coco_object (official cfg_coco_object).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/naclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_object.txt',
    prob_thd=0.1)
