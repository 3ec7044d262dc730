# CLIPer on voc21: scripts/config/vit-b-16/ovs_voc21.yaml @ c05fa41 (without FGC: --refinement None).
_base_ = ['../_base_/datasets/voc21.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/cls_voc21.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/car_template.txt',  # semantic_templates
    logit_scale=100,
    attention_thr=0.1,
    score_threshold=0.7,
    bkg_thre=0.6,
    is_normalize=True,
    sliding_crop_size=336)  # the active line; its comments: 336 -> mIoU 66.5 (62.1 without FGC); 0 -> 66.4 (60.7)
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
