# CASS on coco_object (official cfg_coco_object.py).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_object.txt',
    method=dict(global_semantics_weight=0.25, mean_vector_weight=0.01, h_threshold=0.10),
    prob_thd=0.1)
