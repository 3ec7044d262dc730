# SCLIP + PAMR post-processing (paper: 40.1 average), official settings: 10 steps, dilations (8, 16).
_base_ = ['../sclip_voc21.py']
method = 'SCLIP+PAMR'
model = dict(pamr_steps=10, pamr_dilations=(8, 16))
