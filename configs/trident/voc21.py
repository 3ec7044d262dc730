# Trident on voc21 (official cfg_voc21.py @ a93b346: short side 448).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/proxyclip/voc21.txt',
    prob_thd=0.2)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
