# ResCLIP (Yang et al., CVPR 2025), github yvhangyang/ResCLIP @ 0e085f7f, on NACLIP's last block:
# residual cross-correlation self-attention (the attention maps of blocks 6-9 blended in) and
# semantic feedback refinement (a provisional segmentation reshapes the last block's attention)
# (sclip/models/methods/resclip.py). Per-benchmark temp_thd and attention weights are set by each
# benchmark config; 224/112 windows, whole image on VOC; images resized to short side 336
# (Cityscapes 560); no PAMR on the output (the feedback pass uses its own PAMR, 10 steps).
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'ResCLIP'
paper_key = 'resclip'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(
        type='resclip',
        rcs_blocks=(6, 7, 8, 9),   # official attn_map[5:9]
        gaussian_std=5.0,
        delete_same_entity=True),
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,                 # official: area_thd has no effect on ResCLIP's predictions
    slide_crop=224,
    slide_stride=112,
    whole_image_upsample='via_input')
