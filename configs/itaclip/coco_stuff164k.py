# ITACLIP on coco_stuff164k (official configs/cfg_coco_stuff164k.py).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/itaclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/itaclip/coco_stuff.txt',
    method=dict(img_eng_coefficient=0.75),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/itaclip/coco_stuff_definitions.txt',
                                weight=0.2, first_class=0)),
    logit_scale=40)
