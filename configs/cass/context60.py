# CASS on context60 (official cfg_context60.py).
_base_ = ['../_base_/datasets/context60.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context60.txt',
    method=dict(global_semantics_weight=0.25, mean_vector_weight=0.04, h_threshold=0.09),
    prob_thd=0.1)
