# NACLIP (Hajimiri et al., WACV 2025), github sinahmr/NACLIP @ 0cac3a65 (its "v2" configs): the last
# block is out_proj(softmax(k·kᵀ·d^-½ + G)·v) with G a Gaussian over patch positions (σ = 5 patches;
# the CLS row and column get nothing added), no residual, no MLP; logit scale 40; 224/112 windows;
# images resized to short side 336 (Cityscapes 560). On the whole image (VOC) the patch logits go to
# the input size, then to the original size, as its code does.
#
# PAMR: the official segmentor defaults to pamr_steps=10 and its README's numbers (42.46 average)
# are with PAMR; the paper's main table (39.4 average) is without. These configs reproduce the
# no-PAMR table; configs/naclip_pamr/ reproduces the PAMR one.
_base_ = ['./sclip.py', './pipelines.py']
method = 'NACLIP'
paper_key = 'naclip'
model = dict(
    attention=dict(type='naclip', sigma=5.0),
    last_block_residual=False,
    last_block_mlp=False,
    logit_scale=40,
    whole_image_upsample='via_input',
    pamr_steps=0)
