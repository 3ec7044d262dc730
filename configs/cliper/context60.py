# CLIPer on context60: scripts/config/vit-b-16/ovs_context.yaml @ c05fa41 (without FGC: --refinement None).
_base_ = ['../_base_/datasets/context60.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/cls_context60.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/car_template.txt',  # semantic_templates
    logit_scale=100,
    attention_thr=0.2,
    score_threshold=0.45,
    bkg_thre=0.45,
    is_normalize=False,
    sliding_crop_size=224)  # the active line; its comments: 224 -> mIoU 38.3 (35.7 without FGC); 0 -> 37.5 (34.7)
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
