# Trident (Shi et al., ICCV 2025), github YuHengsss/Trident @ a93b346: CLIP's last block attends
# with DINO ViT-B/16's correspondence in each 336 window (stride 224; the similarity's mean over
# all windows of the image), the windows' outputs are spliced on the whole image's grid, and SAM
# ViT-B's last-block attention, kept where its value similarity passes cos_fac x its mean,
# aggregates them globally (sclip/models/methods/trident.py). Official base_config.py defaults.
# SAM's refinement of the label map (official `eval.py --sam_refine`, sclip/models/sam_refine.py)
# is off as in eval.py's default and base_config.py; the published numbers refine (eval_all.py runs
# dist_test.sh, which passes --sam_refine): `--cfg-options model.method.sam_refine=True` (the
# coarse_thresh of each benchmark is in its config; it needs the full SAM checkpoint).
#
# Larger CLIPs are one override each (the paper's rows; SAM stays ViT-B, as in base_config.py):
#   --cfg-options model.arch=ViT-L-14 model.clip_path=openai
#   --cfg-options model.arch=ViT-H-14 model.clip_path=laion2b_s32b_b79k
# SAM's and DINO's weights: model.method.sam.checkpoint=/path/sam_vit_b_01ec64.pth,
# model.vfm.checkpoint=/path/dino_vitbase16_pretrain.pth (None: downloaded from the official URLs).
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'Trident'
paper_key = 'trident'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(type='trident', beta=1.2, gamma=3.0, cos_fac=1.2, refine_neg_cos=True,
                sam=dict(type='sam_vit_b', checkpoint=None), sam_halves=False,
                sam_refine=False, coarse_thresh=0.2, minimal_area=225, sam_iou_thresh=0.8, sam_mask_coff=0.005),
    vfm=dict(type='dino_vitb16', checkpoint=None),   # official: torch.hub dino_vitb16
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=336,
    slide_stride=224,
    class_name_separator='; ')     # official get_cls_idx splits on '; '
