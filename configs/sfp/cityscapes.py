# SFP on cityscapes (official cfg_city_scapes.py; cfg_city_scapes_local.py is the same but its data_root).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/sfp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/sfp/city_scapes.txt')
