# SFP (Jin et al., "Feature Purification Matters", ICCV 2025), github Kimsure/SFP @ 2804f5b7, folder
# SFP_ICCV: outlier patches of the penultimate block detected (SOM: CLS vs self attention; L2; LOF)
# and repaired, the last block's attention averaged over k·kᵀ, q·qᵀ and an intermediate similarity,
# cross-layer fusion of blocks 4-10 through the similarity attention, outputs aggregated by
# intermediate similarities (sclip/models/methods/sfp.py). 224/112 windows (its segmentor's
# defaults); images resized to short side 336 (ADE20k 384, Cityscapes 560); no PAMR. Its class files
# are SC-CLIP's except 'people' for 'person' in VOC21, VOC20 and Cityscapes (class_names/sfp/).
# The official repository has no COCO-Stuff10k config (none here: docs/PROTOCOL.md).
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'SFP'
paper_key = 'sfp'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(
        type='sfp',
        pm='SOM',                  # outlier detector: SOM, L2 or LOF (configs/base_config.py)
        purify=True,
        cross_s=3,                 # official 0-based indices: F_i is the output of block i + 1
        cross_e=10,
        res_cls=0.3),
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=224,
    slide_stride=112)
