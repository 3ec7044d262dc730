# ITACLIP on coco_object (official configs/cfg_coco_object.py).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/itaclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/itaclip/coco_object.txt',
    method=dict(img_eng_coefficient=0.75),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/itaclip/coco_object_synonyms.txt',
                                weight=0.1, first_class=1)),
    logit_scale=50,
    prob_thd=0.1)
