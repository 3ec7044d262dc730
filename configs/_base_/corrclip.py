# CorrCLIP (Zhang et al., ICCV 2025), github zdk258/CorrCLIP @ 103bc18 (CorrCLIPv1/): CLIP's patch
# correlations rebuilt from DINO ViT-B/8's q+k similarity, restricted to class-agnostic region masks
# (merged by DBSCAN on their DINO features), with a spatial branch (blocks 6-10) and a semantic
# branch (one mask class token per region), then each region's majority label
# (sclip/models/methods/corrclip.py, sclip/models/region_masks.py). MetaCLIP ViT-B/16
# (open_clip 'ViT-B-16-quickgelu', 'metaclip_fullcc'); 336 windows with stride 112, each padded to a
# multiple of 56 (mask padding 10000); images resized to short side 336 (ADE20k and Cityscapes 448;
# Cityscapes 224/112 windows); 80 ImageNet templates, logit scale 40.
#
# Region masks: the official default (base_config.py mask_generator=None, the paper's SAM2 masks) reads
# the published masks, data/region_masks/<dataset>/<image>.npz
# (https://huggingface.co/datasets/dk258/CorrCLIP/resolve/main/region_masks.zip). SAM2 on the fly, with
# the official set_mask_generator settings (sam2_hiera_l, 8 points per side: the README's SAM2_8 row):
#   --cfg-options model.region_masks.type=sam2 model.region_masks.checkpoint=/path/to/sam2_hiera_large.pt
# (the masks are cached under ~/.cache/sclip/region_masks). The official supervised generators
# (EntitySeg, Mask2Former, EoMT) are not training-free and are not provided.
#
# Its other CLIPs (base_config.py comments) are one override each:
#   --cfg-options model.arch=ViT-L-14-quickgelu | model.arch=ViT-H-14 model.clip_path=laion2b_s32b_b79k
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'CorrCLIP'
paper_key = 'corrclip'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16-quickgelu',
    clip_path='metaclip_fullcc',
    method=dict(type='corrclip', alpha=1.0, beta=0.5, tau=4.0, eps=0.2, min_samples=1, num_spatial=None),
    vfm=dict(type='dino_vitb8', checkpoint=None),   # None: downloaded from DINO's official URL
    # 'files': root is set by each benchmark config (official instance_mask_path); 'sam2': the other keys
    # (official set_mask_generator; half: fp16 under the official precision, i.e. on CUDA)
    region_masks=dict(type='files', root=None, checkpoint=None, config='sam2_hiera_l.yaml', points_per_side=8,
                      pred_iou_thresh=0.4, stability_score_thresh=0.4, multimask_output=False, half=None),
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=336,
    slide_stride=112,
    slide_pad=56,                  # official compute_padsize(H, W, 56)
    class_name_separator='; ')     # official get_cls_idx splits on '; '
