# SCLIP ablation: CLIP's attention sharpened, softmax(q·kᵀ·s·τ) with τ = 2 (paper: comparison of alternatives).
_base_ = ['../sclip_voc21.py']
method = 'SCLIP-ablation sharpen τ=2'
model = dict(attention=dict(type='sharpen', tau=2.0))
