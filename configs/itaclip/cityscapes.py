# ITACLIP on cityscapes (official configs/cfg_cityscapes.py).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/itaclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/itaclip/cityscapes.txt',
    method=dict(img_eng_coefficient=0.7),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/itaclip/cityscapes_synonyms.txt',
                                weight=0.05, first_class=0)),
    logit_scale=40)
