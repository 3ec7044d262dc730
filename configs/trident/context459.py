# Trident on context459 (official cfg_context459.py @ a93b346: short side 448).
_base_ = ['../_base_/datasets/context459.py', '../_base_/trident.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context459.txt')
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
