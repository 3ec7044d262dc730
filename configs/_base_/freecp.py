# FreeCP (Chen et al., "Training-Free Class Purification", ICCV 2025), github chenqi1126/FreeCP @ 6946aa7
# (freecp_segmentor.py): a plug-in over a base method. model.method.base picks it (FreeCP's
# model_type): 'gem' (its base_config.py's default; GEM's wrapper, depth 7), 'clearclip', 'sclip',
# 'maskclip' or 'vanilla', each as FreeCP's own forward_all computes it (the last block without its
# residual; with its MLP except ClearCLIP), composed here, not copied per base. Per window: the
# query probabilities at CLIP's logit scale (model.logit_scale=100, OpenAI's learned exp(4.6052) in
# fp16), refined by CLIP's attention of blocks 1-11 inside the boxes of each class's map, redundant
# classes dropped (rp_thres), overlapping ones told apart by CLIP's CLS token on the box crops
# against Vicuna-13B class descriptions (ap_thres; configs/class_texts/freecp/); its own
# post-processing (no prob_thd / area_thd: class 0 scores 1 - max of the others where the
# benchmark has a background). 384/112 windows (Cityscapes 224/112), short side 448 (Cityscapes 560),
# its class files (configs/class_names/freecp/ where they differ from SCLIP's).
# Official benchmarks: VOC21, Context60, COCO-Object, VOC20, Cityscapes, Context59, ADE20K,
# COCO-Stuff164k (no config for COCO-Stuff10k, ADE-847, Context-459: none here, docs/PROTOCOL.md).
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'FreeCP'
paper_key = 'freecp'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(
        type='freecp',
        base='gem',                # model_type of its base_config.py
        rp_thres=0.15,             # set by each benchmark config
        ap_thres=0.7,
        background=False),         # with_bkg and not ignore_bkg: class 0 is the background
    text=dict(descriptions=dict(
        file=None,                 # set by each benchmark config (its `dataset` key picks the file)
        templates='none',          # the descriptions are encoded as they are
        weight=None)),             # kept apart: only the crops are classified with them
    logit_scale=100,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=384,
    slide_stride=112)
