# FSA on coco_object (official cfg_coco_object.py).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/fsa.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/proxyclip/coco_object.txt',
    prob_thd=0.30)
