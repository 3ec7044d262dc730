# NACLIP (WACV 2025) on context60: last block softmax(k·kᵀ·d^-½ + G)·v, G a Gaussian over patch
# positions (σ = 5 patches), no residual, no MLP; logit scale 40.
_base_ = ['../sclip_context60.py']
method = 'NACLIP'
model = dict(
    attention=dict(type='naclip', sigma=5.0),
    last_block_residual=False,
    last_block_mlp=False,
    logit_scale=40,
    prob_thd=0.1)
