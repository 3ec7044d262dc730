# Trident on cityscapes (official cfg_city_scapes.py @ a93b346: short side 688, SAM on each half of the image (its dataset_type='CityscapesDataset')).
_base_ = ['../_base_/datasets/cityscapes.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/city_scapes.txt',
    method=dict(coarse_thresh=0.1, cos_fac=3.0, refine_neg_cos=False, sam_halves=True))
test_pipeline = {{_base_.pipeline_688}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
