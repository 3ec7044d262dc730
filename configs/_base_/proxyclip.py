# ProxyCLIP (Lan et al., ECCV 2024), github mc-lan/ProxyCLIP @ e7b767fb: the last block attends with
# the patch correspondence of a vision foundation model (default DINO ViT-B/8), adaptively
# normalised (beta 1.2) and masked (gamma 3.0), no residual, no MLP, no CLS
# (sclip/models/methods/proxyclip.py). 336 windows with stride 112, each padded to a multiple of
# 56; images resized to short side 336 (ADE20k and Cityscapes 448; Cityscapes 224/112 windows).
#
# Other foundation models and CLIPs are one override each, e.g.
#   --cfg-options model.vfm.type=dinov2_vitb14_reg | sam_vit_b | mae_vit_b16 (+ model.vfm.checkpoint=...)
#   --cfg-options model.arch=ViT-L-14 | model.arch=ViT-H-14 model.clip_path=laion2b_s32b_b79k
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'ProxyCLIP'
paper_key = 'proxyclip'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(type='proxyclip', beta=1.2, gamma=3.0),
    vfm=dict(type='dino_vitb8', checkpoint=None),   # None: downloaded from DINO's official URL
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=336,
    slide_stride=112,
    slide_pad=56,                  # official compute_padsize(H, W, 56)
    class_name_separator='; ')     # official get_cls_idx splits on '; '
