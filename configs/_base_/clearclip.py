# ClearCLIP (ECCV 2024): last block softmax(q·qᵀ·d^-½)·v through out_proj, no residual, no MLP;
# logit scale 50; 448 crop / 224 stride on images resized to short side 448.
_base_ = ['./sclip.py']
method = 'ClearCLIP'
model = dict(
    attention=dict(type='csa_q'),
    last_block_residual=False,
    last_block_mlp=False,
    logit_scale=50,
    slide_crop=448,
    slide_stride=224)
clearclip_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
