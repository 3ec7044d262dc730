# NACLIP (WACV 2025): last block softmax(k·kᵀ·d^-½ + G)·v, G a Gaussian over patch positions
# (σ = 5 patches; the CLS row and column get no added term), no residual, no MLP; logit scale 40.
_base_ = ['./sclip.py']
method = 'NACLIP'
model = dict(
    attention=dict(type='naclip', sigma=5.0),
    last_block_residual=False,
    last_block_mlp=False,
    logit_scale=40)
