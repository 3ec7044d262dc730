# NACLIP on voc20, on the whole image (no sliding window).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/naclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc20.txt',
    slide_crop=0)
