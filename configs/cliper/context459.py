# CLIPer on context459: its context59 settings (scripts/config/vit-b-16/ovs_context59.yaml @ c05fa41, without FGC)
# with the context459 vocabulary (ours, not official: no context459 config). Its class-file format: the
# background words of its cls_context60.txt ('background') on the first line, then class_names/context459.txt
# (one name a class). CLIPer's background goes to 65535, the ignored label (a miss where the label is a class).
_base_ = ['../_base_/datasets/context459.py', '../_base_/cliper.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/cliper/context459.txt',
    templates_file='{{fileDirname}}/../class_names/cliper/car_template.txt',  # semantic_templates
    logit_scale=100,
    attention_thr=0.2,
    score_threshold=0.3,
    bkg_thre=0.3,
    is_normalize=False,
    sliding_crop_size=224,
    reduce_zero_label=True,  # file class c is label c (no background class in Context-459)
    background_label=65535)
test_pipeline = {{_base_.cliper_pipeline_336}}  # size: 336
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
