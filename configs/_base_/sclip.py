# SCLIP on CLIP ViT-B/16 with OpenAI's weights (docs/PROTOCOL.md). Benchmark configs set the
# class names and the per-dataset post-processing; everything else is shared.
_base_ = ['./default_runtime.py']
method = 'SCLIP'  # row name in sweeps and the paper table
paper_key = 'sclip'  # published row in sclip/paper.py
model = dict(
    type='SCLIPSegmentor',
    class_names=None,              # set by each benchmark config
    arch='ViT-B-16',
    clip_path='openai',            # or a local OpenAI / open_clip checkpoint (alias: pretrained)
    attention=dict(type='csa'),    # any registered variant: sclip/models/attention.py
    num_modified_blocks=1,
    last_block_residual=True,
    last_block_mlp=True,
    logit_scale=40,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=None,               # None: the model's input size (224 for ViT-B/16)
    slide_stride=None,             # None: half the crop (112 for ViT-B/16)
    slide_mode='batched',
    pamr_steps=0,
    pamr_dilations=(8, 16))
