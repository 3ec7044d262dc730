# CLIPer on coco_stuff164k: scripts/config/vit-b-16/ovs_stuff164.yaml @ c05fa41 (without FGC: --refinement None).
_base_ = ['../_base_/datasets/coco_stuff164k.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/cls_coco_stuff172.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/car_template.txt',  # semantic_templates
    logit_scale=50,
    attention_thr=0.2,
    score_threshold=0.1,
    bkg_thre=0.1,
    is_normalize=False,
    sliding_crop_size=0,  # the active line; its comments: 0 -> mIoU 27.6 (25.4 without FGC); 224 -> 28.6 (26.4)
    reduce_zero_label=True)  # COCOStuffSegDataset: mask + 1, 255 kept
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
