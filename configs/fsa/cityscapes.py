# FSA on cityscapes (official cfg_city_scapes.py).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/fsa.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt',
    slide_crop=224,
    slide_stride=80)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
