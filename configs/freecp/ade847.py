# FreeCP on ade847: its ade20k settings (official configs/cfg_ade20k.py) with the ade847 vocabulary (ours, not
# official: no ade847 config, and no Vicuna descriptions of these classes in its repository). One name a class
# (FreeCP's queries: the first of each line of class_names/ade847.txt, as GroupViT's file); the ambiguity step
# classifies its crops against the classes' own template texts (model.method.ambiguity_texts='queries': its
# get_prompts(use_llm=False) in place of use_llm=True; docs/PROTOCOL.md, FreeCP).
_base_ = ['../_base_/datasets/ade847.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/groupvit/ade847.txt',
    method=dict(rp_thres=0.05, ap_thres=0.7, background=False, ambiguity_texts='queries'),
    text=None,
    slide_crop=384)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/ade847.py)
