"""Oracle: GEM's inference (WalBouss/GEM @ 5fa677c, the ``gem_torch`` package: ``gem/gem_utils.py``
``SelfSelfAttention``, ``GEMResidualBlock``, ``modified_vit_forward``, ``resample_abs_pos_embed``;
``gem/gem_wrapper.py`` ``GEMWrapper.apply_gem``) on the benchmarks as ClearCLIP's segmentor runs it
(mc-lan/ClearCLIP @ ad68a40, ``model_type='GEM'``: ``image_features = self.net.visual(img)``, the
rest as tests/official/clearclip.py).

ClearCLIP vendors gem_torch with two changes, both transcribed as switches: ``GEMResidualBlock``
takes ``ignore_residual`` (True: GEM's path is each block's attention output alone; GEM's own code:
False), and ``modified_vit_forward`` returns ``x_gem[:, 1:, :]`` instead of ``[x_gem, x]`` (here:
``visual_forward(...)[0][:, 1:]``).

Quirks kept:
- ``apply_gem`` replaces ``resblocks[-i]`` for ``i in range(1, depth)``: the last ``depth - 1``
  blocks (6 for the default depth 7).
- The positional embedding is resampled whenever ``x.shape[1] != positional_embedding.shape[1]``:
  the number of tokens against the *width* (the embedding is (N, C)), i.e. practically always;
  ``resample_abs_pos_embed`` then returns it unchanged on the native 14x14 grid, else resizes by
  size (bicubic, antialias=True, in the embedding's dtype, fp32).
- The adaptive temperature is ``mean over tokens of ‖ln_1(x)‖₂`` (over the whole width) times
  ``head_dim^-½``, per image.
- Both paths read ``ln_1`` of the *original* path's tokens; the original path's last block output
  is computed but unused (so here).
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .clearclip import OfficialClearCLIP
from .common import layer_norm, residual_block


def resample_abs_pos_embed(posemb: Tensor, new_size: List[int], old_size=None, num_prefix_tokens: int = 1,
                           interpolation: str = 'bicubic', antialias: bool = True) -> Tensor:
    """``gem_utils.resample_abs_pos_embed``."""
    new_size = tuple(new_size)
    new_ntok = new_size[0] * new_size[1]
    if not old_size:
        old_size = int(math.sqrt(posemb.shape[1] - num_prefix_tokens))
    old_size = (old_size, old_size)
    if new_size == old_size:
        return posemb

    if num_prefix_tokens:
        posemb_prefix, posemb = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    else:
        posemb_prefix, posemb = None, posemb

    posemb = posemb.reshape(1, old_size[0], old_size[1], -1).permute(0, 3, 1, 2)
    posemb = F.interpolate(posemb, size=new_size, mode=interpolation, antialias=antialias)
    posemb = posemb.permute(0, 2, 3, 1).reshape(1, new_ntok, -1)

    if posemb_prefix is not None:
        posemb = torch.cat([posemb_prefix, posemb], dim=1)
    return posemb


def self_self_attention(attn: nn.MultiheadAttention, x: Tensor, ss_attn_iter: int = 1,
                        ss_attn_temp: Optional[float] = None) -> List[Tensor]:
    """``SelfSelfAttention.forward`` (LND in, [GEM, original] LND out); its ``qkv`` / ``proj``
    are copies of the block's ``in_proj`` / ``out_proj`` (``apply_gem``); dropouts are 0."""
    num_heads = attn.num_heads
    x = x.transpose(0, 1)
    B, N, C = x.shape
    scale = (C // num_heads) ** -0.5
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).reshape(B, N, 3, num_heads, C // num_heads)
    qkv = qkv.permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    # original self-attention for the original path
    attn_ori_return = (q @ k.transpose(-2, -1)) * scale
    attn_ori = attn_ori_return.softmax(dim=-1)

    x_ori = (attn_ori @ v).transpose(1, 2).reshape(B, N, C)
    x_ori = F.linear(x_ori, attn.out_proj.weight, attn.out_proj.bias)

    # GEM
    xs1 = v
    xs2 = k
    xs3 = q

    if ss_attn_temp is None:
        pre_norm = torch.norm(x, dim=-1).mean(dim=-1, keepdim=True).unsqueeze(1).unsqueeze(-1)
        inv_temp = pre_norm * scale
    else:
        inv_temp = ss_attn_temp

    for it in range(ss_attn_iter):
        xs1 = F.normalize(xs1, dim=-1)
        xs2 = F.normalize(xs2, dim=-1)
        xs3 = F.normalize(xs3, dim=-1)

        attn_return1 = (xs1 @ xs1.transpose(-2, -1)) * inv_temp
        attn_return2 = (xs2 @ xs2.transpose(-2, -1)) * inv_temp
        attn_return3 = (xs3 @ xs3.transpose(-2, -1)) * inv_temp

        attn1 = (attn_return1).softmax(dim=-1)
        attn2 = (attn_return2).softmax(dim=-1)
        attn3 = (attn_return3).softmax(dim=-1)

        xs1 = attn1 @ xs1
        xs2 = attn2 @ xs2
        xs3 = attn3 @ xs3

    # Assigment to V
    xs1 = F.normalize(xs1, dim=-1)
    xs2 = F.normalize(xs2, dim=-1)
    xs3 = F.normalize(xs3, dim=-1)

    attn_return1 = (xs1 @ xs1.transpose(-2, -1)) * inv_temp
    attn_return2 = (xs2 @ xs2.transpose(-2, -1)) * inv_temp
    attn_return3 = (xs3 @ xs3.transpose(-2, -1)) * inv_temp

    attn1 = (attn_return1).softmax(dim=-1)
    attn2 = (attn_return2).softmax(dim=-1)
    attn3 = (attn_return3).softmax(dim=-1)

    xs1 = attn1 @ v
    xs2 = attn2 @ v
    xs3 = attn3 @ v
    xs = (xs1 + xs2 + xs3) / 3

    x = xs.transpose(1, 2).reshape(B, N, C)
    x = F.linear(x, attn.out_proj.weight, attn.out_proj.bias)

    return [x.transpose(0, 1), x_ori.transpose(0, 1)]


def gem_residual_block(blk: nn.Module, q_x, ignore_residual: bool = False, ss_attn_iter: int = 1,
                       ss_attn_temp: Optional[float] = None) -> List[Tensor]:
    """``GEMResidualBlock.forward`` (ClearCLIP's copy: with ``ignore_residual``)."""
    if isinstance(q_x, list):
        x_gem, q_x = q_x
    else:
        x_gem = q_x

    x_gem_res, x_ori_res = self_self_attention(blk.attn, layer_norm(blk.ln_1, q_x), ss_attn_iter, ss_attn_temp)
    x_gem_res, x_ori_res = blk.ls_1(x_gem_res), blk.ls_1(x_ori_res)
    # Original
    x_ori = q_x + x_ori_res
    x_ori = x_ori + blk.ls_2(blk.mlp(layer_norm(blk.ln_2, x_ori)))
    # GEM
    if ignore_residual:
        x_gem = x_gem_res
    else:
        x_gem = x_gem + x_gem_res
    return [x_gem, x_ori]


def visual_forward(visual: nn.Module, x: Tensor, depth: int = 7, ss_attn_iter: int = 1,
                   ss_attn_temp: Optional[float] = None, ignore_residual: bool = False) -> List[Tensor]:
    """``modified_vit_forward`` of the GEM-wrapped ``VisionTransformer`` -> [x_gem, x] (NLD, projected)."""
    assert visual.attn_pool is None and visual.proj is not None
    x = visual.conv1(x)  # shape = [*, width, grid, grid]
    grid_h, grid_w = x.shape[2:]
    x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
    x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]

    # class embeddings and positional embeddings (_expand_token)
    x = torch.cat([visual.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)

    if x.shape[1] != visual.positional_embedding.shape[1]:
        pos_emb = resample_abs_pos_embed(visual.positional_embedding.unsqueeze(0), new_size=[grid_h, grid_w],
                                         num_prefix_tokens=1, interpolation='bicubic', antialias=True)
    else:
        pos_emb = visual.positional_embedding

    x = x + pos_emb.to(x.dtype)
    x = layer_norm(visual.ln_pre, x)  # patch_dropout: identity at inference

    x = x.permute(1, 0, 2)  # NLD -> LND
    blocks = visual.transformer.resblocks
    gem_blocks = {len(blocks) - i for i in range(1, depth)}  # apply_gem: resblocks[-i], i in 1..depth-1
    for index, blk in enumerate(blocks):  # Transformer.forward: x = r(x)
        if index in gem_blocks:
            x = gem_residual_block(blk, x, ignore_residual, ss_attn_iter, ss_attn_temp)
        else:
            x = residual_block(blk, x)
    x_gem, x = x
    x = x.permute(1, 0, 2)  # LND -> NLD
    x_gem = x_gem.permute(1, 0, 2)  # LND -> NLD

    # Apply proj
    x = layer_norm(visual.ln_post, x)
    x_gem = layer_norm(visual.ln_post, x_gem)
    x = x @ visual.proj
    x_gem = x_gem @ visual.proj
    return [x_gem, x]


class OfficialGEM(OfficialClearCLIP):
    """ClearCLIP's segmentor with ``model_type='GEM'`` over GEM's vision forward."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 gem_depth: int = 7, ss_attn_iter: int = 1, ss_attn_temp: Optional[float] = None,
                 ignore_residual: bool = False, **settings):
        super().__init__(clip_model, query_features, query_idx, model_type='GEM', ignore_residual=ignore_residual,
                         **settings)
        self.gem = dict(depth=gem_depth, ss_attn_iter=ss_attn_iter, ss_attn_temp=ss_attn_temp,
                        ignore_residual=ignore_residual)

    def encode(self, img: Tensor) -> Tensor:
        """``self.net.visual(img)``: ClearCLIP's copy returns ``x_gem[:, 1:, :]``."""
        return visual_forward(self.net.visual, img, **self.gem)[0][:, 1:, :]


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """GEM's labels (1, h, w) on ClearCLIP's harness for one pre-processed image ``img`` (1, 3, H, W).

    Settings: gem_depth=7, ss_attn_iter=1, ss_attn_temp=None, ignore_residual=False (GEM's own;
    ClearCLIP's base_config: True), and ClearCLIP's prob_thd, logit_scale, slide_stride,
    slide_crop, half."""
    segmentor = OfficialGEM(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
