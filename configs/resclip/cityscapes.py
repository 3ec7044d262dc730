# ResCLIP on cityscapes (official cfg_city_scapes.py).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt',
    method=dict(temp_thd=0.1, rcs_weights=(2.0, 0.2), sfr_weights=(2.1, 0.6)))
