# CASS on ade20k (official cfg_ade20k.py).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade20k.txt',
    method=dict(global_semantics_weight=0.3, mean_vector_weight=0.05, h_threshold=0.06))
