# GEM on cityscapes, ClearCLIP's benchmark settings (official cfg_city_scapes: 224 windows, default stride 224).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/gem.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt',
    slide_crop=224,
    slide_stride=224)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
