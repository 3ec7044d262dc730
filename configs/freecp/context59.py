# FreeCP on context59 (official configs/cfg_context59.py: dataset='pc').
_base_ = ['../_base_/datasets/context59.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context59.txt',
    method=dict(rp_thres=0.1, ap_thres=0.7, background=False),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/freecp/context60.json')),
    slide_crop=384)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
