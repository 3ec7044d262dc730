# NACLIP + PAMR on context60 (the official default: 10 steps, dilations 8 and 16; README table).
_base_ = ['../naclip/context60.py']
method = 'NACLIP+PAMR'
paper_key = 'naclip+pamr'
model = dict(pamr_steps=10, pamr_dilations=(8, 16))
