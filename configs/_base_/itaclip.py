# ITACLIP (Aydın et al., CVPRW 2025), github m-arda-aydn/ITACLIP @ 521a33c4: CLIP's blocks unmodified,
# the last block attends with 0.5·CSA_L + 0.5·mean(CSA_7, CSA_8, CSA_10), keeps its residual, drops
# its MLP (sclip/models/methods/itaclip.py); image engineering (grayscale, blur, two flips) per
# window; LLaMA-3 definitions or synonyms mixed into the class names (model.text.descriptions,
# configs/class_texts/itaclip/); its own class files; 224/28 windows; PAMR 10 steps (every official
# config sets it); a 3×3 morphological closing of the label map. Per benchmark: the description
# file and weight (def_coefficient), img_eng_coefficient, logit scale and thresholds of its
# configs/cfg_<benchmark>.py. Official benchmarks: VOC21, Context60, COCO-Object, COCO-Stuff164k,
# Cityscapes (no config for VOC20, Context59, ADE20K, COCO-Stuff10k: not provided here).
_base_ = ['./default_runtime.py']
method = 'ITACLIP'
paper_key = 'itaclip'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config (configs/class_names/itaclip/)
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(
        type='itaclip',
        intermediate_layers=(7, 8, 10),
        attn_self=True,
        image_engineering=True,
        img_eng_coefficient=0.75),
    text=dict(descriptions=dict(
        file=None,                 # set by each benchmark config
        templates='openai_imagenet',
        weight=0.2,                # def_coefficient
        first_class=0)),           # 1 where class 0 is the background (it keeps its names alone)
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=224,
    slide_stride=28,
    pamr_steps=10,
    pamr_dilations=(8, 16),
    label_closing=3)
