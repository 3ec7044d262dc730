# ClearCLIP on cityscapes (224 / 224 windows at the SCLIP resolution).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/clearclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt',
    slide_crop=224,
    slide_stride=224)
