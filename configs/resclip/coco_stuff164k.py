# ResCLIP on coco_stuff164k (official cfg_coco_stuff164k).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/resclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt',
    method=dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
test_pipeline = {{_base_.pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
