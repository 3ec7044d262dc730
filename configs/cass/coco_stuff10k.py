# CASS on coco_stuff10k (no official config: CASS's COCO-Stuff164k settings on the 10k split).
_base_ = ['../_base_/datasets/coco_stuff10k.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt',
    method=dict(global_semantics_weight=0.2, mean_vector_weight=0.02, h_threshold=0.02))
