# GroupViT on voc21 (official segmentation/configs/_base_/datasets/pascal_voc12.py).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/groupvit.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/voc21.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
