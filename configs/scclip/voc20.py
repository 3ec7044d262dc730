# SC-CLIP on voc20 (official cfg_voc20).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/scclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc20.txt')
