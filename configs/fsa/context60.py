# FSA on context60 (official cfg_context60.py).
_base_ = ['../_base_/datasets/context60.py', '../_base_/fsa.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context60.txt',
    prob_thd=0.14)
