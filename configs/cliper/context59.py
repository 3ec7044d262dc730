# CLIPer on context59: scripts/config/vit-b-16/ovs_context59.yaml @ c05fa41 (without FGC: --refinement None).
_base_ = ['../_base_/datasets/context59.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/cls_context60.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/car_template.txt',  # semantic_templates
    logit_scale=100,
    attention_thr=0.2,
    score_threshold=0.3,
    bkg_thre=0.3,
    is_normalize=False,
    sliding_crop_size=224,  # the active line; its comments: 224 -> mIoU 42.4 (39.6 without FGC); 0 -> 41.6 (38.4)
    reduce_zero_label=True)  # Context60 files, label 0 ignored (ignore_labels [0, 255])
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
