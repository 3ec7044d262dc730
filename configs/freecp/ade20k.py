# FreeCP on ade20k (official configs/cfg_ade20k.py: dataset='ade').
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade20k.txt',
    method=dict(rp_thres=0.05, ap_thres=0.7, background=False),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/freecp/ade20k.json')),
    slide_crop=384)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
