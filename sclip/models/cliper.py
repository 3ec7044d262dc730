"""CLIPer (Sun et al., "CLIPer: Hierarchically Improving Spatial Representation of CLIP for
Open-Vocabulary Semantic Segmentation", ICCV 2025; linsun449/cliper.code @ c05fa41), without its
fine-grained compensation (FGC, Stable Diffusion): its ``--refinement None``.

With ``A`` the per-head attention weights of blocks 1..L-1 summed, ``h_i`` block i's ``ln_1`` of its
input (i < L) and ``h_L`` block L-1's output:

1. early-layer fusion: for k = 1..L, ``A`` is normalised in place by its column sums, then its row
   sums (so call k sees k such iterations); ``W_k = rownorm(relu(S - colmean S))`` with
   ``S = (A + Aᵀ)/2``; layer k's features are the last block's ``out_proj(W_k · v(ln_1(h_k)))``
   (no residual, no MLP), then ln_post and the projection;
2. per layer, softmax over [classes, background words, mean class] of ``scale · cos``, classes kept;
   with ``sliding_crop_size`` > 0, averaged with the same on windows (stride 112), whose logits and
   ``mean_heads W_L`` are averaged where windows overlap, the logits propagated by the row-normalised
   averaged attention before the softmax;
3. the last layer, entries under ``attention_thr`` of its maximum zeroed (in place: the mean sees it
   too), propagated by the whole image's ``mean_heads W_L``, plus the mean of all layers;
4. bilinear to the image's size, each class map scaled to peak at its patch-grid maximum ``s_c``;
   ``cam_to_label``: classes with ``s_c > score_threshold`` compete; with ``bkg_thre > 0`` values
   under it are background, else background scores ``(1 - max)²``.

The resized positional embedding is bilinear and rounded through fp16 (the official ``.half()``).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .clip_vit import CLIPViT

SLIDE_STRIDE = 112  # official forward_slide default


def fp16_bilinear_positional(pos: Tensor, native_grid: Tuple[int, int], grid: Tuple[int, int]) -> Tensor:
    """The official ``upsample_pos_emb``: patch positions resized bilinearly (always), then fp16."""
    patches = pos[1:].t().reshape(1, pos.shape[1], native_grid[0], native_grid[1])
    patches = F.interpolate(patches, size=grid, mode='bilinear', align_corners=False)
    return torch.cat([pos[:1], patches.reshape(pos.shape[1], -1).t()]).half()


def fused_weights(summed: Tensor) -> Tensor:
    """One fusion step on the summed attention ``summed`` (B, heads, N, N), updated in place."""
    summed /= summed.sum(dim=-2, keepdim=True)
    summed /= summed.sum(dim=-1, keepdim=True)
    symmetric = (summed + summed.transpose(-2, -1)) / 2
    weights = (symmetric - symmetric.mean(dim=-2, keepdim=True)).clamp(min=0)
    return weights / weights.sum(dim=-1, keepdim=True)


def layer_features(vit: CLIPViT, images: Tensor) -> Tuple[Tensor, Tensor]:
    """(L, B, N, D) projected features of every layer and the last fusion's weights averaged
    over heads, (B, N, N)."""
    x, _ = vit.embed(images, fp16_bilinear_positional)
    depth = vit.depth
    summed, inputs = None, []
    for block in range(1, depth):  # CLIP's blocks, each attention computed once: its weights are summed
        h = vit.block(block).ln_1(x)  # and applied to v, as the official MultiheadAttention(need_weights=True)
        q, k, v = vit.qkv(block, h)
        attention = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
        summed = attention.clone() if summed is None else summed + attention
        x = x + vit.block(block).ls_1(vit.attention_output(block, attention @ v))
        x = x + vit.mlp(block, x)
        inputs.append(h)
    inputs.append(x)
    outputs = []
    last = vit.block(depth)
    width = x.shape[-1]
    value_weight, value_bias = last.attn.in_proj_weight[2 * width:], last.attn.in_proj_bias[2 * width:]
    for h in inputs:  # the last block's values alone: the fused weights replace its q·kᵀ
        weights = fused_weights(summed)
        v = F.linear(last.ln_1(h), value_weight, value_bias)
        v = v.reshape(*v.shape[:2], last.attn.num_heads, -1).transpose(1, 2)
        outputs.append(vit.attention_output(depth, weights @ v))
    return vit.project(torch.stack(outputs)), weights.mean(dim=1)


def layer_logits(vit: CLIPViT, image: Tensor, text: Tensor, logit_scale: float) -> Tuple[Tensor, Tensor]:
    """(L, T, gh, gw) logits of one image (1, 3, H, W) and its (n, n) patch attention."""
    features, attention = layer_features(vit, image)
    logits = logit_scale * F.normalize(features[:, 0, 1:], dim=-1) @ F.normalize(text, dim=-1).t()
    grid = (image.shape[-2] // vit.patch_size[0], image.shape[-1] // vit.patch_size[1])
    return logits.transpose(-1, -2).reshape(logits.shape[0], -1, *grid), attention[0, 1:, 1:]


def window_origins(length: int, crop: int, stride: int):
    for index in range(max(length - crop + stride - 1, 0) // stride + 1):
        end = min(index * stride + crop, length)
        yield max(end - crop, 0), end


def slide_logits(vit: CLIPViT, image: Tensor, text: Tensor, logit_scale: float, crop: int) -> Tensor:
    """The official ``forward_slide``: (L, T, gh, gw) window logits averaged, propagated by the
    row-normalised average of the windows' attention."""
    patch = vit.patch_size[0]
    gh, gw = image.shape[-2] // patch, image.shape[-1] // patch
    logits = image.new_zeros((vit.depth, text.shape[0], gh, gw))
    counts = image.new_zeros((1, gh, gw))
    attention = image.new_zeros((gh, gw, gh, gw))
    attention_counts = torch.zeros_like(attention)
    for y1, y2 in window_origins(image.shape[-2], crop, SLIDE_STRIDE):
        for x1, x2 in window_origins(image.shape[-1], crop, SLIDE_STRIDE):
            window_logits, window_attention = layer_logits(vit, image[:, :, y1:y2, x1:x2], text, logit_scale)
            rows, cols = slice(y1 // patch, y2 // patch), slice(x1 // patch, x2 // patch)
            h, w = window_logits.shape[-2:]
            attention[rows, cols, rows, cols] += window_attention.reshape(h, w, h, w)
            attention_counts[rows, cols, rows, cols] += 1
            logits[..., rows, cols] += window_logits
            counts[..., rows, cols] += 1
    logits = logits / counts
    attention = (attention / (attention_counts + 1e-5)).reshape(gh * gw, gh * gw)
    attention = attention / attention.sum(dim=-1, keepdim=True)
    return (logits.flatten(-2) @ attention).unflatten(-1, (gh, gw))


@torch.no_grad()
def class_maps(vit: CLIPViT, image: Tensor, classes: Tensor, background: Tensor, logit_scale: float,
               attention_thr: float, sliding_crop_size: int = 0) -> Tensor:
    """CLIPer's (C, gh, gw) class maps of one image (1, 3, H, W); ``classes`` (C, D) and
    ``background`` (K, D) are unit text embeddings."""
    text = torch.cat([classes, background, classes.mean(dim=0, keepdim=True)])
    count = classes.shape[0]
    logits, attention = layer_logits(vit, image, text, logit_scale)
    probs = logits.softmax(dim=1)[:, :count]
    if sliding_crop_size > 0:
        slide = slide_logits(vit, image, text, logit_scale, sliding_crop_size).softmax(dim=1)[:, :count]
        probs = slide * 0.5 + probs * 0.5
    last = probs[-1]
    last[last < last.amax(dim=(-1, -2), keepdim=True) * attention_thr] = 0  # official: also in the mean
    propagated = (last.flatten(-2) @ attention).unflatten(-1, last.shape[-2:])
    return propagated + probs.mean(dim=0)


def cam_labels(maps: Tensor, size: Tuple[int, int], bkg_thre: float, score_threshold: float,
               is_normalize: bool) -> Tuple[Tensor, Tensor]:
    """(C, H, W) scaled class maps at ``size`` and (H, W) labels, 0 background, c + 1 class c."""
    scores = maps.amax(dim=(-1, -2))
    maps = F.interpolate(maps[None], size=size, mode='bilinear', align_corners=False)[0]
    maps = maps / (maps.amax(dim=(-1, -2), keepdim=True) + 1e-5) * scores[:, None, None]
    cam = maps.flatten(1).clone()
    if is_normalize:
        cam -= cam.amin(dim=-1, keepdim=True)
        cam /= cam.amax(dim=-1, keepdim=True) + 1e-6
    cam = cam.reshape(maps.shape) * (scores > score_threshold)[:, None, None]
    if bkg_thre > 0:
        cam[cam < bkg_thre] = 0
        value, labels = cam.max(dim=0)
        return maps, torch.where(value == 0, 0, labels + 1)
    background = (1 - cam.amax(dim=0, keepdim=True)) ** 2
    return maps, torch.cat([background, cam]).argmax(dim=0)
