# GEM (Bousselham et al., CVPR 2024), github WalBouss/GEM @ 5fa677c (the gem_torch package): the
# last 6 blocks (gem_depth=7) add a self-self attention ensemble (v·vᵀ, k·kᵀ, q·qᵀ, L2-normalised,
# adaptive temperature, 1 iteration) on a second path with its residual and without MLP
# (sclip/models/methods/gem.py). GEM's own code computes exactly this; its positional embedding is
# resized by size with antialiasing (timm's resample_abs_pos_embed), not SCLIP's way.
#
# Benchmark settings: GEM's repository has no segmentation benchmark configs (its README shows a
# VOC loop with a hand-tuned background threshold). Two repositories re-implement GEM on the
# benchmarks by vendoring gem_torch: ClearCLIP (mc-lan/ClearCLIP @ ad68a40, model_type='GEM') and
# SegEarth-OV (likyoo/SegEarth-OV @ 3e22a96, a copy of ClearCLIP's, with remote-sensing configs
# only). We follow ClearCLIP's, the one with configs for these nine benchmarks: its segmentor
# settings (logit scale 50, 448 windows with stride 224 padded to the patch size, short side 448,
# its class files split on ',', its per-benchmark prob_thd, fp16 input) as in configs/clearclip/.
# One difference, on purpose: ClearCLIP's base_config.py sets ignore_residual=True, which its
# vendored GEMResidualBlock turns into dropping GEM's residual (g = attention output of each block
# alone) - not what GEM's code computes. We run GEM's own (ignore_residual=False); ClearCLIP's
# variant is --cfg-options model.method.ignore_residual=True.
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'GEM'
paper_key = 'gem'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(
        type='gem',
        gem_depth=7,               # gem_torch's create_gem_model defaults
        ss_attn_iter=1,
        ss_attn_temp=None,         # None: adaptive temperature mean‖ln_1(x)‖ · d^-½
        ignore_residual=False),    # GEM's own; ClearCLIP's base_config: True
    logit_scale=50,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=448,
    slide_stride=224,
    slide_pad=16,                  # ClearCLIP's compute_padsize(H, W, patch_size)
    class_name_separator=',',      # ClearCLIP's get_cls_idx splits on ','
    official_cast_input=True)      # ClearCLIP's `inputs.half()` (only used with precision='official')
