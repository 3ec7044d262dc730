# CorrCLIP on coco_object (official cfg_coco_object.py).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/coco_object.txt',
    region_masks=dict(root='data/region_masks/coco'),
    prob_thd=0.25)
