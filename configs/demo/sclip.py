# SCLIP on any image with any class names (tools/demo.py sets model.class_names).
_base_ = ['../_base_/sclip.py']
model = dict(class_names='{{fileDirname}}/../class_names/voc21.txt')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='PackSegInputs'),
]
