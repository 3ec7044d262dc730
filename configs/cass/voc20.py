# CASS on voc20 (official cfg_voc20.py: the file name turns off the singular-value stretch).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc20.txt',
    method=dict(global_semantics_weight=0.4, mean_vector_weight=0.02, h_threshold=0.10,
                scale_singular_values=False))
