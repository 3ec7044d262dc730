"""GroupViT (Xu et al., CVPR 2022): the grouping ViT, its text transformer and projectors.

Why: GroupViT is a trained open-vocabulary segmenter with its own backbone, not a CLIP ViT;
this is its architecture written against the official ``MultiLabelContrastive`` state-dict
layout (NVlabs/GroupViT @ 13b7861, models/group_vit.py, transformer.py,
multi_label_contrastive.py), so the released ``group_vit_gcc_*_30e-*.pth`` load key for key.
Only the inference path is kept (no dropout, drop path, gumbel noise or losses); where the
official arithmetic could be written more simply but would round differently, it is kept
and marked "official:".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, Transformer
from torch import Tensor, nn


@dataclass(frozen=True)
class GroupViTArch:
    """The architecture of a GroupViT checkpoint (configs/group_vit_gcc_*_30e.yml)."""
    embed_dim: int = 384
    depths: Tuple[int, ...] = (6, 3, 3)
    num_heads: Tuple[int, ...] = (6, 6, 6)
    num_group_tokens: Tuple[int, ...] = (64, 8, 0)
    num_output_groups: Tuple[int, ...] = (64, 8)
    patch_size: int = 16
    image_size: int = 224
    text_width: int = 256
    text_layers: int = 12
    context_length: int = 77
    vocab_size: int = 49408
    output_dim: int = 256
    proj_num_layers: int = 2
    proj_inner_dim: int = 4096


class Mlp(nn.Module):
    def __init__(self, in_features: int, hidden: int, out_features: Optional[int] = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_features or in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MixerMlp(Mlp):
    """An MLP over the token axis (group tokens of one stage -> the next stage's)."""
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def split_heads(x: Tensor, heads: int) -> Tensor:
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)  # b n (h c) -> b h n c


def merge_heads(x: Tensor) -> Tensor:
    return x.transpose(1, 2).flatten(2)  # b h n c -> b n (h c)


class Attention(nn.Module):
    """Multi-head attention with a fused ``qkv`` (self-attention blocks) or separate q/k/v
    projections (cross-attention), as the official ``Attention(qkv_fuse=...)``."""

    def __init__(self, dim: int, num_heads: int, fused: bool):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.fused = fused
        if fused:
            self.qkv = nn.Linear(dim, dim * 3)
        else:
            self.q_proj = nn.Linear(dim, dim)
            self.k_proj = nn.Linear(dim, dim)
            self.v_proj = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, key: Optional[Tensor] = None) -> Tensor:
        if self.fused:
            B, N, C = query.shape
            qkv = self.qkv(query).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            key = query if key is None else key
            q = split_heads(self.q_proj(query), self.num_heads)
            k = split_heads(self.k_proj(key), self.num_heads)
            v = split_heads(self.v_proj(key), self.num_heads)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj(merge_heads(attn @ v))


class AttnBlock(nn.Module):
    """Pre-norm transformer block over image tokens and group tokens together."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, fused=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock(nn.Module):
    """Group tokens attend to image tokens, post-norm (the grouping block's ``pre_assign_attn``)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm_post = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, fused=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        x = query + self.attn(query, key)
        x = x + self.mlp(self.norm2(x))
        return self.norm_post(x)


class AssignAttention(nn.Module):
    """Hard assignment of every image token to one group token (eval: no gumbel noise).

    Returns the groups' new features and the *soft* assignment ``softmax`` over groups
    (B, 1, G, N), which the official evaluation turns into the segmentation."""

    def __init__(self, dim: int, assign_eps: float = 1.0):
        super().__init__()
        self.scale = dim ** -0.5
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.assign_eps = assign_eps

    def forward(self, query: Tensor, key: Tensor) -> Tuple[Tensor, Tensor]:
        q = split_heads(self.q_proj(query), 1)
        k = split_heads(self.k_proj(key), 1)
        v = split_heads(self.v_proj(key), 1)
        raw = (q @ k.transpose(-2, -1)) * self.scale
        soft = raw.softmax(dim=-2)  # over the groups
        hard = torch.zeros_like(raw).scatter_(-2, soft.max(-2, keepdim=True)[1], 1.0)
        attn = hard - soft + soft  # official: the straight-through expression, kept for its rounding
        attn = attn / (attn.sum(dim=-1, keepdim=True) + self.assign_eps)
        return self.proj(merge_heads(attn @ v)), soft


class GroupingBlock(nn.Module):
    """Merges the image tokens into ``num_output_group`` segments (official ``GroupingBlock``)."""

    def __init__(self, dim: int, out_dim: int, num_heads: int, num_group_token: int, num_output_group: int):
        super().__init__()
        self.norm_tokens = nn.LayerNorm(dim)
        self.mlp_inter = Mlp(num_group_token, int(0.5 * dim), num_output_group)
        self.norm_post_tokens = nn.LayerNorm(dim)
        self.norm_x = nn.LayerNorm(dim)
        self.pre_assign_attn = CrossAttnBlock(dim, num_heads)
        self.assign = AssignAttention(dim)
        self.norm_new_x = nn.LayerNorm(dim)
        self.mlp_channels = Mlp(dim, int(4.0 * dim), out_dim)
        self.reduction = (nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, out_dim, bias=False))
                          if dim != out_dim else nn.Identity())

    def forward(self, x: Tensor, group_tokens: Tensor) -> Tuple[Tensor, Tensor]:
        group_tokens = self.norm_tokens(group_tokens)
        x = self.norm_x(x)
        projected = self.norm_post_tokens(self.mlp_inter(group_tokens.transpose(1, 2)).transpose(1, 2))
        projected = self.pre_assign_attn(projected, x)
        new_x, soft = self.assign(projected, x)
        new_x = new_x + projected
        return self.reduction(new_x) + self.mlp_channels(self.norm_new_x(new_x)), soft


class GroupingLayer(nn.Module):
    """One stage: transformer blocks over [image tokens, group tokens], then grouping."""

    def __init__(self, dim: int, depth: int, num_heads: int, num_group_token: int,
                 downsample: Optional[GroupingBlock], group_projector: Optional[nn.Module]):
        super().__init__()
        self.num_group_token = num_group_token
        self.group_token = nn.Parameter(torch.zeros(1, num_group_token, dim)) if num_group_token > 0 else None
        self.blocks = nn.ModuleList(AttnBlock(dim, num_heads) for _ in range(depth))
        self.downsample = downsample
        self.group_projector = group_projector

    def forward(self, x: Tensor, prev_group_token: Optional[Tensor]):
        group_token = None
        if self.group_token is not None:
            group_token = self.group_token.expand(x.size(0), -1, -1)
            if self.group_projector is not None:
                group_token = group_token + self.group_projector(prev_group_token)
            x = torch.cat([x, group_token], dim=1)
        for block in self.blocks:
            x = block(x)
        if group_token is not None:
            x, group_token = x[:, :-self.num_group_token], x[:, -self.num_group_token:]
        soft = None
        if self.downsample is not None:
            x, soft = self.downsample(x, group_token)
        return x, group_token, soft


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.proj(x)
        hw = tuple(x.shape[2:])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


def interpolate_pos_encoding(pos_embed: Tensor, h: int, w: int) -> Tensor:
    """The learned (1, N, C) embedding resized bicubically to an h x w grid (official misc.py)."""
    n = pos_embed.shape[1]
    if h * w == n and w == h:
        return pos_embed
    side = int(math.sqrt(n))
    dim = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode='bicubic', align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, -1, dim)


class GroupViTEncoder(nn.Module):
    """The grouping ViT (official ``GroupViT``, ``pos_embed_type='simple'``, no head)."""

    def __init__(self, arch: GroupViTArch):
        super().__init__()
        self.patch_embed = PatchEmbed(arch.patch_size, arch.embed_dim)
        grid = arch.image_size // arch.patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, arch.embed_dim))
        stages = len(arch.depths)
        self.layers = nn.ModuleList()
        dim = arch.embed_dim
        for i in range(stages):
            downsample = None
            if i < stages - 1:
                downsample = GroupingBlock(dim, dim, arch.num_heads[i], arch.num_group_tokens[i],
                                           arch.num_output_groups[i])
            projector = None
            if i > 0 and arch.num_group_tokens[i] > 0:
                projector = nn.Sequential(nn.LayerNorm(dim), MixerMlp(arch.num_group_tokens[i - 1], dim // 2,
                                                                      arch.num_group_tokens[i]))
            self.layers.append(GroupingLayer(dim, arch.depths[i], arch.num_heads[i], arch.num_group_tokens[i],
                                             downsample, projector))
        self.norm = nn.LayerNorm(dim)
        self.width = dim

    def forward(self, x: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """Final segment tokens (B, S, C), normalised, and each grouping's soft assignment (B, 1, G, N)."""
        x, hw = self.patch_embed(x)
        x = x + interpolate_pos_encoding(self.pos_embed, *hw)
        group_token = None
        assignments = []
        for layer in self.layers:
            x, group_token, soft = layer(x, group_token)
            if soft is not None:
                assignments.append(soft)
        return self.norm(x), assignments


class ProjectMLP(nn.Module):
    """1x1 convolutions with batch norm (running statistics at test time), official ``ProjectMLP``."""

    def __init__(self, in_dim: int, inner_dim: int, out_dim: int, num_layers: int):
        super().__init__()
        hidden: List[nn.Module] = []
        for i in range(num_layers - 1):
            hidden += [nn.Conv1d(in_dim if i == 0 else inner_dim, inner_dim, kernel_size=1),
                       nn.BatchNorm1d(inner_dim), nn.ReLU(inplace=True)]
        self.linear_hidden = nn.Sequential(*hidden)
        self.linear_out = nn.Conv1d(in_dim if num_layers == 1 else inner_dim, out_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        squeeze = x.ndim == 2
        if squeeze:
            x = x.unsqueeze(1)
        x = self.linear_out(self.linear_hidden(x.transpose(1, 2))).transpose(1, 2)
        return x.squeeze(1) if squeeze else x


class TextTransformer(nn.Module):
    """CLIP-style causal text transformer, width/64 heads, the EOT token's feature (no projection)."""

    def __init__(self, arch: GroupViTArch):
        super().__init__()
        width = arch.text_width
        self.transformer = Transformer(width, arch.text_layers, width // 64, act_layer=QuickGELU,
                                       norm_layer=nn.LayerNorm, batch_first=False)
        self.positional_embedding = nn.Parameter(torch.zeros(arch.context_length, width))
        self.ln_final = nn.LayerNorm(width)
        self.token_embedding = nn.Embedding(arch.vocab_size, width)
        mask = torch.full((arch.context_length, arch.context_length), float('-inf')).triu_(1)
        self.register_buffer('attn_mask', mask, persistent=False)

    def forward(self, text: Tensor) -> Tensor:
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x, attn_mask=self.attn_mask.to(x.dtype))  # batch_first=False: runs sequence-first
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)]


class GroupViTModel(nn.Module):
    """The official ``MultiLabelContrastive`` container: ``img_encoder``, ``text_encoder``, their
    projectors and ``logit_scale`` (state-dict keys as in the released checkpoints)."""

    def __init__(self, arch: GroupViTArch = GroupViTArch()):
        super().__init__()
        self.arch = arch
        self.img_encoder = GroupViTEncoder(arch)
        self.text_encoder = TextTransformer(arch)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.img_projector = ProjectMLP(self.img_encoder.width, arch.proj_inner_dim, arch.output_dim, arch.proj_num_layers)
        self.text_projector = ProjectMLP(arch.text_width, arch.proj_inner_dim, arch.output_dim, arch.proj_num_layers)

    def encode_image(self, image: Tensor) -> Tuple[Tensor, Tensor, List[Tensor]]:
        """(pooled image feature (B, D), segment features (B, S, D), soft assignments)."""
        tokens, assignments = self.img_encoder(image)
        pooled = F.adaptive_avg_pool1d(tokens.transpose(1, 2), 1).flatten(1)  # official avgpool
        return self.img_projector(pooled), self.img_projector(tokens), assignments

    def encode_text(self, text: Tensor) -> Tensor:
        return self.text_projector(self.text_encoder(text))

    @torch.no_grad()
    def build_text_embedding(self, tokens: Tensor) -> Tensor:
        """(N, T, L) tokens of N classes x T templates -> (N, D): the templates' mean, normalised."""
        n, t = tokens.shape[:2]
        features = self.encode_text(tokens.flatten(0, 1)).unflatten(0, (n, t))
        return F.normalize(features.mean(dim=1), dim=-1)
