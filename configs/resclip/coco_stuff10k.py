# ResCLIP on coco_stuff10k (no official config: the COCO-Stuff164k settings on the 10k split).
_base_ = ['../_base_/datasets/coco_stuff10k.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt',
    method=dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
