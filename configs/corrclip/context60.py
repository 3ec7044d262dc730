# CorrCLIP on context60 (official cfg_context60.py).
_base_ = ['../_base_/datasets/context60.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/context60.txt',
    region_masks=dict(root='data/region_masks/context'),
    prob_thd=0.15)
