# GEM on coco_stuff164k, ClearCLIP's benchmark settings (official cfg_coco_stuff164k).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt')
