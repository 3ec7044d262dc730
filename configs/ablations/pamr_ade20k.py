# SCLIP + PAMR post-processing (paper: 40.1 average), SCLIP's PAMR dilations (8, 16); SCLIP publishes no step count, the 10 steps are NACLIP's default.
_base_ = ['../sclip_ade20k.py']
method = 'SCLIP+PAMR'
model = dict(pamr_steps=10, pamr_dilations=(8, 16))
