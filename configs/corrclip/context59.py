# CorrCLIP on context59 (official cfg_context59.py).
_base_ = ['../_base_/datasets/context59.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/corrclip/context59.txt',
    region_masks=dict(root='data/region_masks/context'))
