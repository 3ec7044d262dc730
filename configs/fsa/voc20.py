# FSA on voc20 (official cfg_voc20.py).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/fsa.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/proxyclip/voc20.txt')
