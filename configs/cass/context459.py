# CASS on context459 (ours, not official: no official context459 config; its context59 settings with the context459 vocabulary).
_base_ = ['../_base_/datasets/context459.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context459.txt',
    method=dict(global_semantics_weight=0.25, mean_vector_weight=0.04, h_threshold=0.09))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
