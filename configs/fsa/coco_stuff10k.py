# FSA on coco_stuff10k (no official config: FSA settings on the COCO-Stuff10k split).
_base_ = ['../_base_/datasets/coco_stuff10k.py', '../_base_/fsa.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/coco_stuff.txt')
