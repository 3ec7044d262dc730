# ITACLIP on context459: ours, not official (m-arda-aydn/ITACLIP @ 521a33c has no Context59 or Context-459 config,
# and no LLM texts for these classes). Its COCO-Stuff164k settings (official configs/cfg_coco_stuff164k.py: its one
# benchmark of many classes with no background, as Context-459 has none; = configs/_base_/itaclip.py: logit scale
# 40, img_eng_coefficient 0.75, no prob_thd) with the context459 vocabulary and no LLM definitions (model.text=None,
# as its remote-sensing configs); short side 336, its cfg_context60.py's Resize of these images (the dataset's).
_base_ = ['../_base_/datasets/context459.py', '../_base_/itaclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context459.txt',
    text=None)
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
