# CorrCLIP on context459: its context59 settings with the context459 vocabulary (ours, not official: no official context459 config);
# no published region masks for context459: SAM2 on the fly (set model.region_masks.checkpoint).
_base_ = ['../_base_/datasets/context459.py', '../_base_/corrclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context459.txt',
    region_masks=dict(type='sam2'))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
