# GroupViT (Xu et al., CVPR 2022), evaluated as its official code does: NVlabs/GroupViT @ 13b7861,
# segmentation/evaluation/group_vit_seg.py (GroupViTSegInference) on mmseg 0.x's EncoderDecoder
# test loop; sclip/models/groupvit/. Its own backbone (a grouping ViT-S/16: 6+3+3 blocks, 64 then 8
# group tokens, hard assignment) and text transformer, loaded from the released checkpoint.
#
# Weights: model.checkpoint = group_vit_gcc_yfcc_30e-879422e0.pth (README's GCC+YFCC model: VOC
# 52.3, the VOC21 number of SCLIP's Table 1) or group_vit_gcc_redcap_30e-3dd09a76.pth (GCC+RedCaps:
# COCO 27.5, the Object number there); both from github.com/xvjiarui/GroupViT#benchmark-results.
#
# Settings: every official dataset config (pascal_voc12.py, pascal_context.py, coco.py) resizes to
# short side 448 (img_scale (2048, 448), keep ratio), normalises with ImageNet's mean/std and slides
# 448 windows with stride 224; template 'simple' ('a photo of a {}.'); class names = the mmseg 0.x
# dataset's CLASSES, a first 'background' class decided by bg_thresh (VOC and COCO 0.95, Context
# 0.35). GroupViT's repository has no config for the other five benchmarks: there, TCL's dataset
# configs (kakaobrain/tcl @ bc2b551, the unified protocol of the paper that evaluated GroupViT on
# all eight, which SCLIP's Table 1 quotes) give the same resize and windows, and those datasets
# have no background class. Not reproduced: the official run's apex O1 mixed precision (we run fp32).
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'GroupViT'
paper_key = 'groupvit'
model = dict(
    type='GroupViTSegmentor',
    class_names=None,              # set by each benchmark config
    checkpoint=None,               # /path/to/group_vit_gcc_yfcc_30e-879422e0.pth
    num_heads=[6, 6, 6],           # configs/group_vit_gcc_*_30e.yml
    templates=['a photo of a {}.'],  # the 'simple' set of configs/default.yml evaluate.seg.template
    bg_thresh=0.95,                # test_cfg of pascal_voc12.py / coco.py
    slide_crop=448,
    slide_stride=224)
