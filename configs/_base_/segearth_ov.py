# SegEarth-OV (Li et al., CVPR 2025), github likyoo/SegEarth-OV @ 3e22a96 (built on ClearCLIP's
# code): the last block is out_proj((softmax(q·qᵀ) + softmax(k·kᵀ) + softmax(v·vᵀ))·v) with no
# residual and no MLP ('SegEarth' model_type, ignore_residual=True); the modified [CLS] token's class
# scores are subtracted from every pixel's (global bias, cls_token_lambda=-0.3); the patch features
# are upsampled 16x by SimFeatUp (jbu_one, its xclip_jbu_one_million_aid.ckpt) guided by the window
# (sclip/models/methods/segearth_ov.py, sclip/models/simfeatup.py). Its segmentor's defaults: 224
# windows, stride 112, each padded to a multiple of the patch size, logit scale 50; CLIP ViT-B/16
# (OpenAI), fp16 with the input cast to fp16. The remote-sensing base configs (configs/_base_/
# datasets/rs_<key>.py) carry its test pipeline: Resize(scale=(448, 448), keep_ratio=True), i.e. the
# LONG side becomes 448. Per dataset (configs/segearth_ov/): the class file (its configs/cls_*.txt,
# split on ','), prob_thd, bg_idx, and cls_token_lambda=0 for xBD.
#
# The upsampler's weights ship in the SegEarth-OV repository (simfeatup_dev/weights/
# xclip_jbu_one_million_aid.ckpt, a PyTorch-Lightning file): point model.method.upsampler.checkpoint
# at it. Ablations: upsampler=None (no SimFeatUp), upsampler=dict(type='bilinear'),
# cls_token_lambda=0 (no bias subtraction), attention='csa_q' (ClearCLIP's).
_base_ = ['./default_runtime.py']
method = 'SegEarth-OV'
paper_key = 'segearth_ov'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each dataset config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(
        type='segearth_ov',
        attention='csa_qkv',       # official model_type='SegEarth'
        ignore_residual=True,
        cls_token_lambda=-0.3,
        upsampler=dict(type='jbu_one', checkpoint='checkpoints/xclip_jbu_one_million_aid.ckpt')),
    logit_scale=50,
    prob_thd=0.0,
    area_thd=None,
    bg_idx=0,
    slide_crop=224,
    slide_stride=112,
    slide_pad=16,                  # official compute_padsize(H, W, patch_size)
    class_name_separator=',',      # official get_cls_idx splits on ','
    official_cast_input=True,      # official `inputs.half()` (only used with precision='official')
    window_batch_size=2)           # upsampled features are (D, 224, 224) per window: few windows a pass
