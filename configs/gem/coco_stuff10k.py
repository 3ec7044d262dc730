# GEM on coco_stuff10k, ClearCLIP's benchmark settings (no official config: ClearCLIP settings on the COCO-Stuff10k split).
_base_ = ['../_base_/datasets/coco_stuff10k.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
