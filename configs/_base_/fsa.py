# FSA (Chi et al., ICCV 2025), github chi-chi-zx/FSA @ dbd2da5: ProxyCLIP (configs/_base_/proxyclip.py,
# whose settings, foundation model, windows and class files it keeps) with feedback self-adaptive
# attention in the last block (sclip/models/methods/fsa.py). lamda 3.0 (official hyper_param.txt:
# SAM, DINO, DINOv2 with ViT-B/16 or ViT-L/14; 2.3 with ViT-H/14; 4.5 with MAE, any CLIP).
#
# Other foundation models and CLIPs are overrides, with the official lamda:
#   --cfg-options model.vfm.type=dinov2_vitb14_reg | sam_vit_b (+ model.vfm.checkpoint=...)
#   --cfg-options model.vfm.type=mae_vit_b16 model.vfm.checkpoint=... model.method.lamda=4.5
#   --cfg-options model.arch=ViT-L-14 | model.arch=ViT-H-14 model.clip_path=laion2b_s32b_b79k model.method.lamda=2.3
_base_ = ['./proxyclip.py']
method = 'FSA'
paper_key = 'fsa'
model = dict(method=dict(type='fsa', lamda=3.0))
