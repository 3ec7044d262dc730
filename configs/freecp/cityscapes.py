# FreeCP on cityscapes (official configs/cfg_city_scapes.py: dataset='city').
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt',
    method=dict(rp_thres=0.1, ap_thres=0.8, background=False),
    text=dict(descriptions=dict(file='{{fileDirname}}/../class_texts/freecp/city_scapes.json')),
    slide_crop=224)
test_pipeline = {{_base_.pipeline_560}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
