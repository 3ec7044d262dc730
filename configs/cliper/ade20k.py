# CLIPer on ade20k: scripts/config/vit-b-16/ovs_ade150.yaml @ c05fa41 (without FGC: --refinement None).
_base_ = ['../_base_/datasets/ade20k.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/cls_ade20k.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/car_template.txt',  # semantic_templates
    logit_scale=100,
    attention_thr=0.2,
    score_threshold=0.3,
    bkg_thre=0.3,
    is_normalize=False,
    sliding_crop_size=0,  # the active line; its comments: 0 -> mIoU 21.5 (19.8 without FGC); 224 -> 22.0 (20.6)
    reduce_zero_label=True)  # ADE label 0 ("other") ignored (ignore_labels [0, 255])
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
