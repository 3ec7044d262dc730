# ClearCLIP on coco_object, "background" as one word.
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/clearclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_object_background.txt',
    prob_thd=0.4)
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
