# CLIPer (Sun et al., "CLIPer: Hierarchically Improving Spatial Representation of CLIP for
# Open-Vocabulary Semantic Segmentation", ICCV 2025), github linsun449/cliper.code @ c05fa41, without
# its fine-grained compensation (FGC, Stable Diffusion): ovs/main_ovs.py --refinement None
# (sclip/models/cliper.py, sclip/models/cliper_segmentor.py). Its own pipeline: PIL, short side to
# `size` with each side rounded to the patch size, bicubic (CLIPerLoadImage); prompts of its
# template files; background words (first line of its class files); cam_to_label thresholds.
#
# Settings: scripts/config/vit-b-16/ovs_<name>.yaml @ c05fa41, the active sliding_crop_size line of
# each (its README's "w/o FGC" row is without the sliding window; the shipped VOC21, Context60,
# Context59 and COCO-Object configs have it on: docs/PROTOCOL.md). Class and template files: the
# repository's, unchanged (configs/class_names/cliper/: data/voc/cls_voc21.txt, cls_context60.txt,
# data/coco14/cls_coco81.txt, cls_coco_stuff172.txt, data/ade/cls_ade20k.txt,
# data/cityscapes/cls_city.txt, template/car_template.txt, template/openai_template.txt).
# Defaults of util/args.py kept: fuse_feature=True, attn_type='fused-attn'; select_layer: -1.
_base_ = ['./default_runtime.py']
method = 'CLIPer'
paper_key = 'cliper'
cliper_pipeline_336 = [
    dict(type='CLIPerLoadImage', size=336, patch_size=16),  # the configs' `size`
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
cliper_pipeline_560 = [
    dict(type='CLIPerLoadImage', size=560, patch_size=16),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
model = dict(
    type='CLIPerSegmentor',
    class_names=None,              # set by each benchmark config
    templates_file=None,           # set by each benchmark config (semantic_templates)
    arch='ViT-B-16',
    clip_path='openai',
    logit_scale=100,
    attention_thr=0.2,
    score_threshold=0.3,
    bkg_thre=0.3,
    is_normalize=False,
    sliding_crop_size=0,
    reduce_zero_label=False,       # CLIPer's labels (0 background) are the dataset's
    split_halves=False)
