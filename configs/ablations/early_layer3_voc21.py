# SCLIP ablation: the last block reuses block #3's attention map (paper: comparison of alternatives).
_base_ = ['../sclip_voc21.py']
method = 'SCLIP-ablation early layer #3'
model = dict(attention=dict(type='early_layer', layer=3))
