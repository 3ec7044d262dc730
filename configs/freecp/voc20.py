# FreeCP on voc20 (official configs/cfg_voc20.py: dataset='voc').
_base_ = ['../_base_/datasets/voc20.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/freecp/voc20.txt',
    method=dict(rp_thres=0.15, ap_thres=0.7, background=False),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/freecp/voc21.json')),
    slide_crop=384)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
