# CASS on ade847 (ours, not official: no official ade847 config; its ade20k settings with the ade847 vocabulary).
_base_ = ['../_base_/datasets/ade847.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade847.txt',
    method=dict(global_semantics_weight=0.3, mean_vector_weight=0.05, h_threshold=0.06))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/ade847.py)
