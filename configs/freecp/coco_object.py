# FreeCP on coco_object (official configs/cfg_coco_object.py: dataset='cocoobj').
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/freecp/coco_object.txt',
    method=dict(rp_thres=0.15, ap_thres=0.8, background=True),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/freecp/coco_object.json')),
    slide_crop=384)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
