# GroupViT on context60 (official segmentation/configs/_base_/datasets/pascal_context.py).
_base_ = ['../_base_/datasets/context60.py', '../_base_/groupvit.py']
model = dict(
    bg_thresh=0.35,
    class_names='{{fileDirname}}/../class_names/groupvit/context60.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
