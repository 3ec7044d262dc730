# ClearCLIP (ECCV 2024) on ade20k: last block softmax(q·qᵀ·d^-½)·v through out_proj, no residual,
# no MLP; logit scale 50; 448 crop / 224 stride on images with short side 448 (Cityscapes:
# 224 / 224 at the SCLIP resolution); "background" as a single word.
_base_ = ['../sclip_ade20k.py']
method = 'ClearCLIP'
model = dict(
    attention=dict(type='csa_q'),
    last_block_residual=False,
    last_block_mlp=False,
    logit_scale=50,
    slide_crop=448,
    slide_stride=224,
    prob_thd=0.0)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
