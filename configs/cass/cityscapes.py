# CASS on cityscapes (official cfg_city_scapes.py: the file name turns off the singular-value stretch and takes the window's CLS).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/cass.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt',
    method=dict(global_semantics_weight=0.1, mean_vector_weight=0.03, h_threshold=0.14,
                scale_singular_values=False, global_semantics='window'))
