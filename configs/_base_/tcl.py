# TCL (Cha et al., CVPR 2023), evaluated as its official code does: kakaobrain/tcl @ bc2b551,
# segmentation/evaluation/tcl_seg.py (TCLSegInference) and models/tcl/tcl.py (generate_masks) on
# mmseg 0.x's EncoderDecoder test loop; sclip/models/tcl/. CLIP ViT-B/16 (last block attending each
# token to itself, MaskCLIP's trick), the masker (a copy of CLIP's last block, the gated up-sampling
# decoder, CLIP's ln_post/proj, sigmoid(w·cos + b)), PAMR and the keep-prior branch.
#
# Weights: model.checkpoint = tcl.pth (github.com/kakaobrain/tcl/releases/download/v1.0.0/tcl.pth);
# where that file lacks the frozen CLIP encoders (the official loader whitelists them and takes them
# from OpenAI's ViT-B/16), model.clip_path = OpenAI's ViT-B-16.pt completes them.
#
# Settings: configs/eval.yml `evaluate` (pamr true, bg_thresh 0.4, kp_w 0.3, template 'custom'); every
# official dataset config (segmentation/configs/_base_/datasets/*.py) resizes to short side 448
# (img_scale (2048, 448), keep ratio), normalises with ImageNet's mean/std and slides 448 windows with
# stride 224. Class names = the mmseg 0.x dataset's CLASSES (TCL's datasets are GroupViT's, so the
# class files are configs/class_names/groupvit/), a first 'background' is the constant bg_thresh.
_base_ = ['./default_runtime.py', './pipelines.py']
method = 'TCL'
paper_key = 'tcl'
model = dict(
    type='TCLSegmentor',
    class_names=None,              # set by each benchmark config
    checkpoint=None,               # /path/to/tcl.pth
    clip_path=None,                # /path/to/ViT-B-16.pt, only if tcl.pth lacks CLIP's tensors
    templates=['itap of a {}.', 'a bad photo of a {}.', 'a origami {}.', 'a photo of the large {}.',
               'a {} in a video game.', 'art of the {}.', 'a photo of the small {}.',
               'a photo of many {}.', 'a photo of {}s.'],  # the 'custom' set of datasets/templates.py
    pamr=True,
    bg_thresh=0.4,
    kp_w=0.3,
    slide_crop=448,
    slide_stride=224)
