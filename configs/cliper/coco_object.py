# CLIPer on coco_object: scripts/config/vit-b-16/ovs_coco5k.yaml @ c05fa41 (without FGC: --refinement None).
_base_ = ['../_base_/datasets/coco_object.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/cls_coco81.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/openai_template.txt',  # semantic_templates
    logit_scale=50,
    attention_thr=0.2,
    score_threshold=0.3,
    bkg_thre=0.3,
    is_normalize=False,
    sliding_crop_size=224)  # the active line; its comments: 224 -> mIoU 40.0 (37.5 without FGC); 0 -> 39.2 (36.3)
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
