# FreeCP on context459: its context59 settings (official configs/cfg_context59.py) with the context459 vocabulary
# (ours, not official: no context459 config, and no Vicuna descriptions of these classes in its repository); no
# background class; the ambiguity step classifies its crops against the classes' own template texts
# (model.method.ambiguity_texts='queries': its get_prompts(use_llm=False); docs/PROTOCOL.md, FreeCP).
_base_ = ['../_base_/datasets/context459.py', '../_base_/freecp.py']
model = dict(
    class_names='{{fileDirname}}/../class_names/context459.txt',
    method=dict(rp_thres=0.1, ap_thres=0.7, background=False, ambiguity_texts='queries'),
    text=None,
    slide_crop=384)
test_pipeline = {{_base_.pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(ignore_index=65535)  # Detectron2's ignore_label (configs/_base_/datasets/context459.py)
