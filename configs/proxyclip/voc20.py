# ProxyCLIP on voc20 (official cfg_voc20).
_base_ = ['../_base_/datasets/voc20.py', '../_base_/proxyclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/proxyclip/voc20.txt')
