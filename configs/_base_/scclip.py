# SC-CLIP (Bai et al., "Self-Calibrated CLIP"), github SuleBai/SC-CLIP @ 0417ba92: outlier patches
# repaired after the penultimate block, the last block guided by the similarity of an intermediate
# block and applied twice (on the repaired tokens and on the fused outputs of intermediate blocks),
# outputs aggregated by intermediate similarities (sclip/models/methods/scclip.py). 224/112 windows;
# images resized to short side 336 (Cityscapes 560); no PAMR.
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'SC-CLIP'
paper_key = 'scclip'
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',
    method=dict(
        type='scclip',
        pre_adjust_idx=8,          # official 0-based indices: F_i is the output of block i + 1
        post_adjust_idx=3,
        multi_start_idx=3,
        multi_end_idx=10,
        res_cls=0.3,
        beta=0.4),
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=224,
    slide_stride=112)
