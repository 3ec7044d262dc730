# NACLIP + PAMR on cityscapes (the official default: 10 steps, dilations 8 and 16; README table).
_base_ = ['../naclip/cityscapes.py']
method = 'NACLIP+PAMR'
paper_key = 'naclip+pamr'
model = dict(pamr_steps=10, pamr_dilations=(8, 16))
