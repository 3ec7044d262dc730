# ITACLIP on ade847: ours, not official (m-arda-aydn/ITACLIP @ 521a33c has no ADE20k, ADE-847 or Context config
# without a background, and no LLM texts for these classes). Its COCO-Stuff164k settings (official
# configs/cfg_coco_stuff164k.py: its one benchmark of many classes with no background; = configs/_base_/itaclip.py:
# logit scale 40, img_eng_coefficient 0.75, no prob_thd, short side 448) with the ade847 vocabulary and no LLM
# definitions (model.text=None, as its remote-sensing configs).
_base_ = ['../_base_/datasets/ade847.py', '../_base_/itaclip.py', '../_base_/pipelines.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/ade847.txt',
    text=None)
test_pipeline = {{_base_.pipeline_448}}  # cfg_coco_stuff164k.py's Resize
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/ade847.py)
