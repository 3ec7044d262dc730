# CASS on coco_stuff164k (official cfg_coco_stuff164k.py: short side 336).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt',
    method=dict(global_semantics_weight=0.2, mean_vector_weight=0.02, h_threshold=0.02))
test_pipeline = {{_base_.pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
