# CASS (Kim et al., CVPR 2025), github MICV-yonsei/CASS @ 228ecdd: the last block attends with CLIP's
# key graph fused with DINO ViT-B/8's, head to head by a Hungarian matching of their spectra and
# low-rank (randomised SVD, seed 42) (sclip/models/methods/cass.py); each cluster of class names
# (Ward linkage, h_threshold) moves its best class towards the image's patches
# (mean_vector_weight), and the image's CLS similarity is mixed into the logits
# (global_semantics_weight). 224 windows, stride 112, logit scale 40; images resized to short side
# 336 (Cityscapes 560). PAMR off (its eval_all.sh runs --pamr off).
#
# The official segmentor reads two settings from the config's file name (cfg_<name>.py): no
# singular-value stretch on VOC20 and Cityscapes, and the window's own CLS (not the whole image's)
# on Cityscapes. Here they are explicit: model.method.scale_singular_values and
# model.method.global_semantics.
#
# The alternative foundation model (official dino_type='dinov2_vitb14', its reg4 checkpoint):
#   --cfg-options model.vfm.type=dinov2_vitb14_reg model.vfm.checkpoint=.../dinov2_vitb14_reg4_pretrain.pth
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'CASS'
paper_key = 'cass'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(type='cass', global_semantics_weight=0.0, mean_vector_weight=0.0, h_threshold=0.0,
                scale_singular_values=True, global_semantics='image', sigma=5.0, scale_factor=10.0,
                k_eigen=20, rank=10, top_patches=2, svd_seed=42),
    vfm=dict(type='dino_vitb8', checkpoint=None),   # None: downloaded from DINO's official URL
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=224,
    slide_stride=112,
    whole_image_upsample='via_input',  # official forward_feature: to the input size, then to the original
    pamr_steps=0)
