# NACLIP + PAMR on ade847: its ade20k settings with the ade847 vocabulary (ours, not official: no official ade847 config).
_base_ = ['../naclip/ade847.py']
method = 'NACLIP+PAMR'
paper_key = 'naclip+pamr'
model = dict(pamr_steps=10, pamr_dilations=(8, 16))
