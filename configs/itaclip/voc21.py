# ITACLIP on voc21 (official configs/cfg_voc21.py).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/itaclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/itaclip/voc21.txt',
    method=dict(img_eng_coefficient=0.7),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/itaclip/voc21_definitions.txt',
                                weight=0.05, first_class=1)),
    logit_scale=60,
    prob_thd=0.1,
    area_thd=0.1)
