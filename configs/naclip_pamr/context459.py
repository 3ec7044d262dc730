# NACLIP + PAMR on context459: its context59 settings with the context459 vocabulary (ours, not official: no official context459 config).
_base_ = ['../naclip/context459.py']
method = 'NACLIP+PAMR'
paper_key = 'naclip+pamr'
model = dict(pamr_steps=10, pamr_dilations=(8, 16))
