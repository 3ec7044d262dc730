# CASS on voc21 (official cfg_voc21.py, whole image).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc21.txt',
    method=dict(global_semantics_weight=0.1, mean_vector_weight=0.03, h_threshold=0.10),
    prob_thd=0.1,
    slide_crop=0)
