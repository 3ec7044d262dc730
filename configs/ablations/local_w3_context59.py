# SCLIP ablation: CLIP's attention restricted to 3×3 patch neighbourhoods (paper: comparison of alternatives).
_base_ = ['../sclip_context59.py']
method = 'SCLIP-ablation local w=3'
model = dict(attention=dict(type='local', window=3))
