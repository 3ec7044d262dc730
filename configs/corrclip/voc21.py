# CorrCLIP on voc21 (official cfg_voc21.py).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/voc21.txt',
    region_masks=dict(root='data/region_masks/voc'),
    prob_thd=0.2)
