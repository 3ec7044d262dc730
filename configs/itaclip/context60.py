# ITACLIP on context60 (official configs/cfg_context60.py).
_base_ = ['../_base_/datasets/context60.py', '../_base_/itaclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/itaclip/context60.txt',
    method=dict(img_eng_coefficient=0.75),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/itaclip/context60_definitions.txt',
                                weight=0.15, first_class=1)),
    logit_scale=55,
    prob_thd=0.1)
