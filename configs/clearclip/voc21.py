# ClearCLIP on voc21, "background" as one word.
_base_ = ['../_base_/datasets/voc21.py', '../_base_/clearclip.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/voc21_background.txt',
    prob_thd=0.5)
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
