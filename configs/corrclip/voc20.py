# CorrCLIP on voc20 (official cfg_voc20.py).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/voc20.txt',
    region_masks=dict(root='data/region_masks/voc'))
