"""What the official codes share literally, transcribed once.

Layout: the official codes run the transformer sequence-first (LND) with OpenAI's ``clip``
package (or a vendored open_clip 2.x). The oracles keep that layout: they take the weights
from the batch-first open_clip 3.x modules (``in_proj_weight``, ``out_proj``, ``ln_*``,
``mlp``) but never call ``nn.MultiheadAttention.forward`` (whose layout and fused fast path
differ); the attention of unmodified blocks is written out as torch 1.10 / 1.13 computed it
(the versions the official READMEs / requirements pin).

Devices: wherever the official code hard-codes ``.cuda()`` the oracles use the device of
the input instead.
"""
from __future__ import annotations

import copy
import math
import os
import sys
from typing import Iterator, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_TESTS, os.path.dirname(_TESTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
# the official pamr.py (SCLIP / SC-CLIP copy; NACLIP / ResCLIP's copy writes the dilations into
# an fp32 ``torch.empty`` buffer instead of ``torch.cat``: the same numbers, since every official
# caller hands PAMR fp32 tensors: ``logits.to(img.dtype)`` with ``img`` the fp32 input)
from test_pamr import ReferencePAMR as PAMR  # noqa: E402,F401

# SegDataPreProcessor of every official segmentor (0-255 scale, BGR -> RGB flip)
CLIP_MEAN = [122.771, 116.746, 104.094]
CLIP_STD = [68.501, 66.632, 70.323]

# get_cls_idx: SCLIP / NACLIP / SC-CLIP / ResCLIP split a class line on ', ',
# ClearCLIP on ',' (so 'a, b' gives the query ' b' with its leading space), ProxyCLIP on '; '
CLASS_SEPARATORS = {'sclip': ', ', 'naclip': ', ', 'scclip': ', ', 'resclip': ', ',
                    'clearclip': ',', 'proxyclip': '; '}


def get_cls_idx(path: str, separator: str) -> Tuple[List[str], List[int]]:
    """The official get_cls_idx (one variant per separator, see CLASS_SEPARATORS)."""
    with open(path, 'r') as f:
        name_sets = f.readlines()
    num_cls = len(name_sets)

    class_names, class_indices = [], []
    for idx in range(num_cls):
        names_i = name_sets[idx].split(separator)
        class_names += names_i
        class_indices += [idx for _ in range(len(names_i))]
    class_names = [item.replace('\n', '') for item in class_names]
    return class_names, class_indices


def query_index_tensor(query_idx: Sequence[int], device) -> Tensor:
    """``self.query_idx = torch.Tensor(self.query_idx).to(torch.int64).to(device)``."""
    return torch.Tensor(list(query_idx)).to(torch.int64).to(device)


def official_fp16(clip_model: nn.Module) -> nn.Module:
    """A deep copy cast as the official loaders cast CLIP for CUDA.

    OpenAI ``clip.build_model`` -> ``convert_weights`` (SCLIP, NACLIP, SC-CLIP, ResCLIP) and
    open_clip 2.x ``create_model(precision='fp16')`` -> ``convert_weights_to_lp`` (ClearCLIP,
    ProxyCLIP) convert the same tensors of a ViT CLIP: Conv / Linear weights and biases,
    MultiheadAttention in-projection weights and bias, and the ``proj`` / ``text_projection``
    parameters. LayerNorms, ``class_embedding`` and ``positional_embedding`` stay fp32 (OpenAI's
    ``LayerNorm`` and open_clip's ``LayerNormFp32`` compute in fp32 and cast back: see
    ``layer_norm``). The values are kept as given: the official checkpoints are fp16 on disk, so
    a model loaded from them already holds fp16-representable fp32 parameters.
    """
    model = copy.deepcopy(clip_model)

    def _convert_weights_to_fp16(l):
        if isinstance(l, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            l.weight.data = l.weight.data.half()
            if l.bias is not None:
                l.bias.data = l.bias.data.half()

        if isinstance(l, nn.MultiheadAttention):
            for attr in [*[f"{s}_proj_weight" for s in ["in", "q", "k", "v"]], "in_proj_bias", "bias_k", "bias_v"]:
                tensor = getattr(l, attr)
                if tensor is not None:
                    tensor.data = tensor.data.half()

        for name in ["text_projection", "proj"]:
            if hasattr(l, name):
                attr = getattr(l, name)
                if isinstance(attr, Tensor):
                    attr.data = attr.data.half()

    model.apply(_convert_weights_to_fp16)
    return model.eval()


def layer_norm(ln: nn.LayerNorm, x: Tensor) -> Tensor:
    """OpenAI ``LayerNorm`` / open_clip ``LayerNormFp32``: fp32 computation, cast back.

    In fp32 this is exactly ``ln(x)`` (open_clip's plain ``LayerNorm`` too)."""
    orig_type = x.dtype
    ret = F.layer_norm(x.type(torch.float32), ln.normalized_shape, ln.weight, ln.bias, ln.eps)
    return ret.type(orig_type)


def multihead_attention(attn: nn.MultiheadAttention, x: Tensor) -> Tensor:
    """``attn(x, x, x, need_weights=False)[0]`` on LND input, as torch 1.10 / 1.13 computed it.

    ``F.multi_head_attention_forward``: packed in-projection, ``q / sqrt(head_dim)``, then
    ``softmax(bmm(q, kᵀ)) @ v`` and the out-projection (no mask in the vision tower). Written out
    because today's module takes a fused path with different rounding.
    """
    tgt_len, bsz, embed_dim = x.shape
    num_heads = attn.num_heads
    head_dim = embed_dim // num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    # _scaled_dot_product_attention
    B, Nt, E = q.shape
    q = q / math.sqrt(E)
    attn_weights = torch.bmm(q, k.transpose(-2, -1))
    attn_weights = F.softmax(attn_weights, dim=-1)
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(tgt_len, bsz, embed_dim)
    return F.linear(attn_output, attn.out_proj.weight, attn.out_proj.bias)


def residual_block(blk: nn.Module, x: Tensor) -> Tensor:
    """``ResidualAttentionBlock.forward`` (LND): ``x + attn(ln_1 x)``, ``x + mlp(ln_2 x)``.

    ``ls_1`` / ``ls_2`` are open_clip's layer scales (identities for OpenAI weights, which have
    none; OpenAI's block has no such call)."""
    x = x + blk.ls_1(multihead_attention(blk.attn, layer_norm(blk.ln_1, x)))
    x = x + blk.ls_2(blk.mlp(layer_norm(blk.ln_2, x)))
    return x


def mlp(blk: nn.Module, x: Tensor) -> Tensor:
    """``blk.mlp(blk.ln_2(x))``: c_fc, QuickGELU, c_proj (the official custom last blocks)."""
    return blk.mlp(layer_norm(blk.ln_2, x))


def interpolate_pos_encoding(visual: nn.Module, x: Tensor, w: int, h: int, **interpolate_kwargs) -> Tensor:
    """``VisionTransformer.interpolate_pos_encoding`` (identical in all six codes).

    ``w`` / ``h`` are the input's height / width (the official ``B, nc, w, h = x.shape``);
    the ``+ 0.1`` makes the bicubic resize use scale (n + 0.1) / sqrt(N). NACLIP / ResCLIP pass
    ``align_corners=False, recompute_scale_factor=False`` explicitly (the defaults)."""
    npatch = x.shape[1] - 1
    N = visual.positional_embedding.shape[0] - 1
    if npatch == N and w == h:
        return visual.positional_embedding
    class_pos_embed = visual.positional_embedding[[0]]
    patch_pos_embed = visual.positional_embedding[1:]
    dim = x.shape[-1]
    w0 = w // visual.patch_size[0]
    h0 = h // visual.patch_size[1]
    w0, h0 = w0 + 0.1, h0 + 0.1
    patch_pos_embed = nn.functional.interpolate(
        patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
        scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)),
        mode='bicubic', **interpolate_kwargs,
    )
    assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def embed(visual: nn.Module, x: Tensor, **interpolate_kwargs) -> Tuple[Tensor, Tuple[int, int]]:
    """The stem of every official ``VisionTransformer.forward``, NLD out.

    conv1 -> tokens -> ``[class_embedding.to(x.dtype) + zeros, tokens]`` -> ``+ positional
    embedding`` (resized in fp32 and cast to the activation dtype when the grid differs) ->
    ``ln_pre`` (open_clip's ``patch_dropout`` is an identity at inference). Also returns the
    conv output's grid (SC-CLIP's ``feat_w, feat_h``)."""
    B, nc, w, h = x.shape
    x = visual.conv1(x)  # shape = [*, width, grid, grid]
    grid = (x.shape[-2], x.shape[-1])
    x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
    x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]
    x = torch.cat([visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype,
                                                                   device=x.device), x], dim=1)
    if x.shape[1] != visual.positional_embedding.shape[0]:
        x = x + interpolate_pos_encoding(visual, x, w, h, **interpolate_kwargs).to(x.dtype)
    else:
        x = x + visual.positional_embedding.to(x.dtype)
    x = layer_norm(visual.ln_pre, x)
    return x, grid


def window_grid(h_img: int, w_img: int, stride: Union[int, Sequence[int]],
                crop_size: Union[int, Sequence[int]]) -> Iterator[Tuple[int, int, int, int]]:
    """The windows of the official ``forward_slide`` loop: (y1, y2, x1, x2), row by row.

    Windows are shifted back inside the image at the far edges and shrink (no padding) when
    the image is smaller than the crop."""
    if type(stride) == int:
        stride = (stride, stride)
    if type(crop_size) == int:
        crop_size = (crop_size, crop_size)
    h_stride, w_stride = stride
    h_crop, w_crop = crop_size
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1 = h_idx * h_stride
            x1 = w_idx * w_stride
            y2 = min(y1 + h_crop, h_img)
            x2 = min(x1 + w_crop, w_img)
            y1 = max(y2 - h_crop, 0)
            x1 = max(x2 - w_crop, 0)
            yield y1, y2, x1, x2


def compute_padsize(H: int, W: int, patch_size: int) -> Tuple[int, int, int, int]:
    """ClearCLIP / ProxyCLIP ``compute_padsize``: (left, right, top, bottom) zero padding up to
    a multiple of ``patch_size``, the odd pixel on the right / bottom."""
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


def postprocess_sclip(seg_logits: Tensor, query_idx: Tensor, logit_scale: float, prob_thd: float,
                      area_thd) -> Tensor:
    """SCLIP / SC-CLIP ``postprocess_result`` -> ``seg_pred`` (1, h, w).

    Quirks: the loop rebinds ``seg_logits`` to image i's slice, so it only works for a batch
    of one (the official test loader's batch size); ``num_cls`` is a 0-d tensor; the first
    ``seg_pred`` inside the ``if`` is dead; ``area_thd`` zeroes the probabilities of every
    non-background class whose argmax area is at most ``area_thd`` of all non-background
    argmax pixels, before ``prob_thd`` sends low-confidence pixels to class 0."""
    batch_size = seg_logits.shape[0]
    for i in range(batch_size):
        seg_logits = seg_logits[i] * logit_scale
        seg_logits = seg_logits.softmax(0)  # n_queries * w * h

        num_cls, num_queries = max(query_idx) + 1, len(query_idx)
        if num_cls != num_queries:
            seg_logits = seg_logits.unsqueeze(0)
            cls_index = nn.functional.one_hot(query_idx)
            cls_index = cls_index.T.view(num_cls, num_queries, 1, 1)
            seg_logits = (seg_logits * cls_index).max(1)[0]
            seg_pred = seg_logits.argmax(0, keepdim=True)  # dead: overwritten below

        if area_thd is not None:
            # Force segmentations with area < self.area_thd to 0 (background)
            predictions = nn.functional.one_hot(seg_logits.argmax(0), num_cls).to(seg_logits.dtype)
            area_pred = predictions[:, :, 1:].sum((0, 1), keepdim=True)  # prone background
            area_pred = (area_pred > area_thd * area_pred.sum()).to(seg_logits.dtype)
            seg_logits[1:] *= area_pred.transpose(0, -1)

        seg_pred = seg_logits.argmax(0, keepdim=True)
        seg_pred[seg_logits.max(0, keepdim=True)[0] < prob_thd] = 0
    return seg_pred


def postprocess_clearclip(seg_logits: Tensor, query_idx: Tensor, logit_scale: float, prob_thd: float) -> Tensor:
    """ClearCLIP / ProxyCLIP ``postprocess_result`` (no area threshold) -> ``seg_pred``.

    Line for line SCLIP's without its ``area_thd`` block; with ``data_samples=None`` the
    official code returns inside the loop, i.e. after the first image."""
    return postprocess_sclip(seg_logits[:1], query_idx, logit_scale, prob_thd, area_thd=None)



def averaged_windows(img: Tensor, stride, crop_size, num_queries: int, window_logits) -> Tensor:
    """The official sliding-window loop (SCLIP's, kept by every fork): each window's logits
    (``window_logits(crop)``, at the window's size) added into a canvas at its place, divided
    by how many windows cover each pixel."""
    batch_size, _, h_img, w_img = img.shape
    preds = img.new_zeros((batch_size, num_queries, h_img, w_img))
    count_mat = img.new_zeros((batch_size, 1, h_img, w_img))
    for y1, y2, x1, x2 in window_grid(h_img, w_img, stride, crop_size):
        crop_seg_logit = window_logits(img[:, :, y1:y2, x1:x2])
        preds += nn.functional.pad(crop_seg_logit,
                                   (int(x1), int(preds.shape[3] - x2), int(y1), int(preds.shape[2] - y2)))
        count_mat[:, :, y1:y2, x1:x2] += 1
    assert (count_mat == 0).sum() == 0
    return preds / count_mat


class NACLIPFamilySegmentor:
    """What NACLIP's ``naclip.py`` and ResCLIP's fork of it share to the letter: patch
    features to window logits, and the sliding window (no padding, logits at input size)."""

    def patch_logits(self, image_features: Tensor, img: Tensor) -> Tensor:
        image_features = image_features[:, 1:]
        image_features /= image_features.norm(dim=-1, keepdim=True)

        logits = image_features @ self.query_features.T

        patch_size = self.visual.patch_size
        w, h = img[0].shape[-2] // patch_size, img[0].shape[-1] // patch_size
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)
        logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear',
                                           align_corners=self.align_corners)
        return logits

    def forward_slide(self, img: Tensor, stride=112, crop_size=224) -> Tensor:
        return averaged_windows(img, stride, crop_size, self.num_queries, self.forward_feature)



class PaddedWindowSegmentor:
    """What ClearCLIP's segmentor and ProxyCLIP's fork of it share to the letter: windows padded
    up to a multiple (``self.pad_multiple``: the patch size in ClearCLIP, 56 in ProxyCLIP),
    their logits cut back, averaged and resized to the original size; ClearCLIP's
    post-processing. (ProxyCLIP also ``.detach()``es each window's logits: a no-op without
    gradients.)"""

    def padded_window_logits(self, crop_img: Tensor) -> Tensor:
        # pad image when (image_size % patch_size != 0)
        H, W = crop_img.shape[2:]
        pad = compute_padsize(H, W, self.pad_multiple)

        if any(pad):
            crop_img = nn.functional.pad(crop_img, pad)

        crop_seg_logit = self.forward_feature(crop_img)

        # mask cutting for padded image
        if any(pad):
            l, t = pad[0], pad[2]
            crop_seg_logit = crop_seg_logit[:, :, t:t + H, l:l + W]
        return crop_seg_logit

    def forward_slide(self, img: Tensor, ori_shape, stride=112, crop_size=224) -> Tensor:
        preds = averaged_windows(img, stride, crop_size, self.num_queries, self.padded_window_logits)
        img_size = tuple(ori_shape)[:2]
        logits = nn.functional.interpolate(preds, size=img_size, mode='bilinear')
        return logits

    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = postprocess_clearclip(seg_logits, self.query_idx, self.logit_scale, self.prob_thd)
        return (seg_pred, seg_logits) if return_logits else seg_pred


def raise_not_implemented(what: str):
    """The official ``raise NotImplemented`` (a constant, not an exception): Python 3 raises
    ``TypeError: exceptions must derive from BaseException`` there; so does this."""
    raise TypeError(f'official code: `raise NotImplemented` ({what}) -> TypeError')
