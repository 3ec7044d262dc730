# Trident on voc20 (official cfg_voc20.py @ a93b346: short side 336).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/proxyclip/voc20.txt',
    slide_stride=112,
    method=dict(cos_fac=0.0))
test_pipeline = {{_base_.pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
