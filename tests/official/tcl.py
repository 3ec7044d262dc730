"""Oracle: TCL's zero-shot segmentation (kakaobrain/tcl @ bc2b551).

Transcribed, close to line by line, on a state dict in the released layout (``checkpoint['model']``):
- sclip/model.py (TCL's CLIP fork): ``ResidualAttentionBlock`` (``nn.MultiheadAttention``, QuickGELU),
  ``Transformer.forward(ignore_last_attn)`` (the last block's mask: -inf off the diagonal),
  ``VisionTransformer.forward(spatial=True)`` with ``interpolate_pos_emb`` (bicubic), ``encode_text``;
- models/tcl/encoders.py ``CLIPImageFeatureEncoder`` (ln_post/proj moved to ``LNProjLayer``, the
  forward hooks on ``resblocks[ie_freeze - 1:]``: ``image_feat`` is block ie_freeze-1's output);
- models/tcl/masker.py ``MaskerBackbone`` (``resblocks[ie_freeze:]``, ln_post Identity, proj None),
  ``MaskerImageFeatureEncoder._encode``, ``Masker.forward_seg`` (deterministic, soft), ``Sim2Mask``;
- models/tcl/decoders.py ``GDecoder`` and modules.py ``ResConv`` / ``ConvBlock`` (norm 'ln' =
  ``LayerNorm2d``, activ 'gelu', nearest 2x up-sampling, ``Gate`` tanh);
- models/tcl/pamr.py ``PAMR`` (the one-hot 3x3 convolution kernels) and ``TCL.apply_pamr``,
  ``kp_branch``, ``compute_padsize``, ``generate_masks``, ``build_text_embedding`` (us.normalize eps 1e-6);
- segmentation/evaluation/tcl_seg.py ``TCLSegInference.encode_decode`` (background = bg_thresh);
- mmseg 0.x ``slide_inference`` / ``inference`` (shared with tests/official/groupvit.py).

``einops.rearrange`` calls are written as the reshapes/permutes they perform. Test-side reference
code: never imported by ``sclip``.
"""
from __future__ import annotations

import functools
from typing import Dict, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .groupvit import Weights, layer_norm, linear, slide_inference


def normalize(t: Tensor, dim: int) -> Tensor:  # us.normalize
    return F.normalize(t, dim=dim, eps=1e-6)


def residual_attention_block(w: Weights, x: Tensor, attn_mask=None) -> Tensor:
    width = x.shape[-1]
    attn = nn.MultiheadAttention(width, max(width // 64, 1))
    attn.load_state_dict({'in_proj_weight': w['attn.in_proj_weight'], 'in_proj_bias': w['attn.in_proj_bias'],
                          'out_proj.weight': w['attn.out_proj.weight'], 'out_proj.bias': w['attn.out_proj.bias']})
    attn.eval()
    y = layer_norm(w.sub('ln_1'), x)
    x = x + attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
    h = linear(w.sub('mlp.c_fc'), layer_norm(w.sub('ln_2'), x))
    h = h * torch.sigmoid(1.702 * h)  # QuickGELU
    return x + linear(w.sub('mlp.c_proj'), h)


def count(state, prefix: str) -> int:
    return len({k[len(prefix):].split('.')[0] for k in state if k.startswith(prefix)})


def transformer(state, prefix: str, x: Tensor, ignore_last_attn: bool, hooks_from: int = None):
    """``Transformer.forward``; also the outputs of blocks ``hooks_from..`` (the forward hooks)."""
    # nn.Sequential runs its blocks in order; the masker's keep CLIP's numbers (resblocks[ie_freeze:])
    names = sorted({k[len(prefix + 'resblocks.'):].split('.')[0] for k in state if k.startswith(prefix + 'resblocks.')},
                   key=int)
    layers = len(names)
    features = []
    for i, name in enumerate(names):
        mask = None
        if ignore_last_attn and i == layers - 1:
            mask = torch.empty(x.shape[0], x.shape[0])
            mask.fill_(float('-inf'))
            mask.fill_diagonal_(0)
        x = residual_attention_block(Weights(state, f'{prefix}resblocks.{name}.'), x, mask)
        if hooks_from is not None and i >= hooks_from:
            features.append(x)
    return x, features


def interpolate_pos_emb(pos_emb: Tensor, H: int, W: int) -> Tensor:
    N = pos_emb.size(0) - 1
    if H * W == N and W == H:
        return pos_emb
    pe_cls, pe_grid = pos_emb[:1], pos_emb[1:]
    size = int(N ** 0.5)
    pe_grid = F.interpolate(pe_grid.reshape(size, size, -1).permute(2, 0, 1)[None], size=(H, W),
                            mode='bicubic', align_corners=False).squeeze(0)
    pe_grid = pe_grid.permute(1, 2, 0).reshape(H * W, -1)
    return torch.cat([pe_cls, pe_grid])


def tcl_forward(state, x: Tensor, ie_freeze: int):
    """``CLIPImageFeatureEncoder.tcl_forward(x, ret_feats=True)``: (B, width, h, w) and the hooked features."""
    w = Weights(state, 'clip_image_encoder.clip_visual.')
    patch_size = w['conv1.weight'].shape[-1]
    H, W = x.shape[-2:]
    x = F.conv2d(x, w['conv1.weight'], stride=patch_size)
    gh, gw = x.shape[2:]
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([w['class_embedding'] + torch.zeros(x.shape[0], 1, x.shape[-1]), x], dim=1)
    x = x + interpolate_pos_emb(w['positional_embedding'], gh, gw)
    x = layer_norm(w.sub('ln_pre'), x)
    x = x.permute(1, 0, 2)
    x, features = transformer(state, 'clip_image_encoder.clip_visual.transformer.', x, True, ie_freeze - 1)
    x = x.permute(1, 0, 2)  # ln_post Identity, proj None
    h, wd = H // patch_size, W // patch_size
    x = x[:, 1:].reshape(x.shape[0], h, wd, -1).permute(0, 3, 1, 2)
    return x, features


def ln_proj(w: Weights, x: Tensor) -> Tensor:
    """``LNProjLayer`` on BCHW (BLCModuleCompatibleBCHW)."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H * W).permute(0, 2, 1)
    x = layer_norm(w.sub('ln'), x) @ w['proj']
    return x.permute(0, 2, 1).reshape(B, -1, H, W)


def conv_block(w: Weights, x: Tensor) -> Tensor:
    x = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w['norm.weight'], w['norm.bias'], 1e-5).permute(0, 3, 1, 2)
    x = F.gelu(x)
    x = F.conv2d(x, w['conv.weight'], w['conv.bias'], padding=w['conv.weight'].shape[-1] // 2)
    return torch.tanh(w['gate.gate']) * x


def gdecoder(state, prefix: str, x: Tensor) -> Tensor:
    for i in range(count(state, prefix + 'net.')):
        w = Weights(state, f'{prefix}net.{i}.')
        x = F.interpolate(x, scale_factor=2)
        x = x + conv_block(w.sub('conv'), x)
        x = x + conv_block(w.sub('conv2'), x)
    return x


def forward_seg(state, image: Tensor, image_feat: Tensor, text_emb: Tensor):
    patch_size = state['clip_image_encoder.clip_visual.conv1.weight'].shape[-1]
    H, W = image.shape[-2:]
    h, w = H // patch_size, W // patch_size
    x, _ = transformer(state, 'masker.image_encoder.backbone.transformer.', image_feat, True)
    x = x.permute(1, 0, 2)
    x = x[:, 1:].reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)
    x = gdecoder(state, 'masker.image_encoder.decoder.decoder.', x)
    image_emb = ln_proj(Weights(state, 'masker.image_encoder.decoder.image_proj.'), x)
    image_emb = normalize(image_emb, dim=1)
    text_emb = normalize(text_emb, dim=-1)
    simmap = torch.einsum('bchw,nc->bnhw', image_emb, text_emb)
    soft_mask = torch.sigmoid(simmap * state['masker.sim2mask.w'] + state['masker.sim2mask.b'])
    return soft_mask, simmap


def local_affinity(kind: str, dilations, x: Tensor) -> Tensor:
    """pamr.py ``LocalAffinity`` / ``LocalAffinityCopy`` / ``LocalStDev`` / ``LocalAffinityAbs``."""
    if kind == 'std':
        weight = torch.zeros(9, 1, 3, 3)
        for i in range(9):
            weight[i, 0, i // 3, i % 3] = 1
    else:
        weight = torch.zeros(8, 1, 3, 3)
        positions = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
        for i, (r, c) in enumerate(positions):
            if kind == 'copy':
                weight[i, 0, r, c] = 1
            else:
                weight[i, 0, 1, 1] = 1
                weight[i, 0, r, c] = -1
    B, K, H, W = x.size()
    x = x.reshape(B * K, 1, H, W)
    x_affs = []
    for d in dilations:
        x_pad = F.pad(x, [d] * 4, mode='replicate')
        x_affs.append(F.conv2d(x_pad, weight, dilation=d))
    x_aff = torch.cat(x_affs, 1).view(B, K, -1, H, W)
    if kind == 'std':
        return x_aff.std(2, keepdim=True)
    if kind == 'abs':
        return torch.abs(x_aff)
    return x_aff


def pamr(x: Tensor, mask: Tensor, num_iter: int = 10, dilations=(1, 2, 4, 8, 12, 24)) -> Tensor:
    mask = F.interpolate(mask, size=x.size()[-2:], mode='bilinear', align_corners=True)
    x_std = local_affinity('std', dilations, x)
    x = -local_affinity('abs', dilations, x) / (1e-8 + 0.1 * x_std)
    x = x.mean(1, keepdim=True)
    x = F.softmax(x, 2)
    for _ in range(num_iter):
        m = local_affinity('copy', dilations, mask)
        mask = (m * x).sum(2)
    return mask


def compute_padsize(H: int, W: int, patch_size: int):
    l, r, t, b = 0, 0, 0, 0
    if W % patch_size:
        lr = patch_size - (W % patch_size)
        l = lr // 2
        r = lr - l
    if H % patch_size:
        tb = patch_size - (H % patch_size)
        t = tb // 2
        b = tb - t
    return l, r, t, b


def kp_branch(state, clip_feat: Tensor, text_emb: Tensor, org_mask: Tensor, kp_w: float) -> Tensor:
    image_emb = ln_proj(Weights(state, 'clip_image_encoder.clip_proj.'), clip_feat)
    image_emb = normalize(image_emb, dim=1)
    text_emb = normalize(text_emb, dim=-1)
    simmap = torch.einsum('bchw,nc->bnhw', image_emb, text_emb)
    mask = torch.sigmoid((simmap - 0.25) * 10.0)
    mask = F.interpolate(mask, org_mask.shape[2:], mode='bilinear')
    return kp_w * mask + (1. - kp_w) * org_mask


def generate_masks(state, image: Tensor, text_emb: Tensor, apply_pamr: bool, kp_w: float) -> Tensor:
    patch_size = state['clip_image_encoder.clip_visual.conv1.weight'].shape[-1]
    ie_freeze = (count(state, 'clip_image_encoder.clip_visual.transformer.resblocks.')
                 - count(state, 'masker.image_encoder.backbone.transformer.resblocks.'))
    H, W = image.shape[2:]
    pad = compute_padsize(H, W, patch_size)
    if any(pad):
        image = F.pad(image, pad)
    pH, pW = image.shape[2:]
    img_emb, clip_image_feats = tcl_forward(state, image, ie_freeze)
    image_feat = clip_image_feats[0]
    mask, simmap = forward_seg(state, image, image_feat, text_emb)
    if apply_pamr:
        small = F.interpolate(image, mask.shape[-2:], mode='bilinear', align_corners=True)
        mask = pamr(small, mask)
    if kp_w:
        mask = kp_branch(state, img_emb, text_emb, mask, kp_w)
    mask = F.interpolate(mask, (pH, pW), mode='bilinear')
    if any(pad):
        l, t = pad[0], pad[2]
        mask = mask[:, :, t:t + H, l:l + W]
    assert mask.shape[2] == H and mask.shape[3] == W
    return mask


def encode_text(state, text: Tensor) -> Tensor:
    w = Weights(state, 'clip_text_encoder.')
    context_length = w['positional_embedding'].shape[0]
    mask = torch.empty(context_length, context_length)
    mask.fill_(float('-inf'))
    mask.triu_(1)
    x = F.embedding(text, w['token_embedding.weight']) + w['positional_embedding']
    x = x.permute(1, 0, 2)
    layers = count(state, 'clip_text_encoder.transformer.resblocks.')
    for i in range(layers):
        x = residual_attention_block(w.sub(f'transformer.resblocks.{i}'), x, mask)
    x = layer_norm(w.sub('ln_final'), x.permute(1, 0, 2))
    return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ w['text_projection']


def build_text_embedding(state, text: Tensor) -> Tensor:
    num_classes, num_templates = text.shape[:2]
    text_embs = encode_text(state, text.reshape(num_classes * num_templates, -1))
    text_embs = text_embs.reshape(num_classes, num_templates, -1).mean(dim=1)
    return normalize(text_embs, dim=-1)


def predict(state: Dict[str, Tensor], tokens: Tensor, class_names: Sequence[str], img: Tensor, ori_shape,
            pamr_on: bool = True, bg_thresh: float = 0.4, kp_w: float = 0.3, stride=(224, 224),
            crop_size=(448, 448), return_logits: bool = False):
    """Labels (1, h, w) for ``img`` (1, 3, H, W), normalised as the official pipeline does;
    ``tokens`` (N, T, L): the templates' tokens of the non-background classes (build_seg_inference)."""
    with torch.no_grad():
        with_bg = class_names[0] == 'background'
        text_embedding = build_text_embedding(state, tokens)
        num_classes = len(text_embedding) + (1 if with_bg else 0)

        def encode_decode(crop):
            masks = generate_masks(state, crop, text_embedding, pamr_on, kp_w)
            B, N, H, W = masks.shape
            if with_bg:
                background = torch.full([B, 1, H, W], bg_thresh, dtype=torch.float)
                masks = torch.cat([background, masks], dim=1)
            return masks
        seg_logit = slide_inference(encode_decode, img, num_classes, stride, crop_size, ori_shape)
        seg_pred = F.softmax(seg_logit, dim=1).argmax(dim=1)
    return (seg_pred, seg_logit) if return_logits else seg_pred


@functools.lru_cache(maxsize=1)
def simple_tokenizer():
    from open_clip.tokenizer import SimpleTokenizer  # CLIP's BPE, the same vocabulary file
    return SimpleTokenizer()


def tokenize(texts: Sequence[str], context_length: int = 77) -> Tensor:
    """sclip/clip.py ``tokenize(texts, context_length, truncate=True)`` (datasets ``Tokenize``)."""
    tokenizer = simple_tokenizer()
    sot_token, eot_token = tokenizer.sot_token_id, tokenizer.eot_token_id
    all_tokens = [[sot_token] + tokenizer.encode(text) + [eot_token] for text in texts]
    result = torch.zeros(len(all_tokens), context_length, dtype=torch.long)
    for i, tokens in enumerate(all_tokens):
        if len(tokens) > context_length:
            tokens = tokens[:context_length]
            tokens[-1] = eot_token
        result[i, :len(tokens)] = torch.tensor(tokens)
    return result


def class_tokens(classnames: Sequence[str], templates: Sequence[str]) -> Tensor:
    """segmentation/evaluation/builder.py ``build_dataset_class_tokens``: (N, T, L)."""
    return torch.stack([torch.stack([tokenize([t.format(c)])[0] for t in templates]) for c in classnames])
