# CLIPer on ade847: its ade20k settings (scripts/config/vit-b-16/ovs_ade150.yaml @ c05fa41, without FGC) with the
# ade847 vocabulary (ours, not official: no ade847 config). Its class-file format: the background words of its
# cls_ade20k.txt ('background') on the first line, then one name a class (the first of each line of
# class_names/ade847.txt, as GroupViT's file). CLIPer's background goes to 65535, the ignored label (a miss
# where the label is a class, as 255 on ADE20k: 255 is a class here).
_base_ = ['../_base_/datasets/ade847.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/ade847.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/car_template.txt',  # semantic_templates
    logit_scale=100,
    attention_thr=0.2,
    score_threshold=0.3,
    bkg_thre=0.3,
    is_normalize=False,
    sliding_crop_size=0,
    reduce_zero_label=True,  # file class c is label c (no background class in ADE-847)
    background_label=65535)
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/ade847.py)
