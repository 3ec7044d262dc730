# NACLIP on cityscapes (official cfg_city_scapes.py).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/naclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt')
