# GEM on coco_object, ClearCLIP's benchmark settings (official cfg_coco_object).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/clearclip/coco_object.txt',
    prob_thd=0.4)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
