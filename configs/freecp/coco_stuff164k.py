# FreeCP on coco_stuff164k (official configs/cfg_coco_stuff164k.py: dataset='cocostuff').
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt',
    method=dict(rp_thres=0.05, ap_thres=0.7, background=False),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/freecp/coco_stuff.json')),
    slide_crop=384)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
