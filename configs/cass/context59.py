# CASS on context59 (official cfg_context59.py).
_base_ = ['../_base_/datasets/context59.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context59.txt',
    method=dict(global_semantics_weight=0.25, mean_vector_weight=0.04, h_threshold=0.09))
