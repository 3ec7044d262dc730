# FSA on voc21 (official cfg_voc21.py).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/fsa.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/proxyclip/voc21.txt',
    prob_thd=0.2)
