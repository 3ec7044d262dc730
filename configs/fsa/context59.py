# FSA on context59 (official cfg_context59.py).
_base_ = ['../_base_/datasets/context59.py', '../_base_/fsa.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context59.txt')
