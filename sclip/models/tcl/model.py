"""TCL's network in the layout of its released checkpoint (kakaobrain/tcl @ bc2b551, models/tcl/).

Why: ``tcl.pth`` is the state dict of the official ``TCL`` module; keeping its module names
(``clip_image_encoder.clip_visual``, ``clip_image_encoder.clip_proj``, ``clip_text_encoder``,
``masker.image_encoder.{backbone,decoder}``, ``masker.sim2mask``) lets the file load key for
key. Only what inference runs is here: CLIP ViT (the last block attending each token to itself
only, MaskCLIP's trick, ``ie_ignore_last_attn``), the masker's copy of the last CLIP blocks, its
gated up-sampling decoder (``GDecoder``) and CLIP's ln_post/proj, and ``Sim2Mask``.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class TCLArch:
    width: int = 768           # CLIP ViT width (heads = width // 64, as OpenAI's build_model)
    layers: int = 12
    patch_size: int = 16
    grid: int = 14             # positional embedding grid (224 / 16)
    ie_freeze: int = 11        # the masker starts from block ie_freeze (configs/tcl.yml)
    embed_dim: int = 512
    text_width: int = 512
    text_layers: int = 12
    context_length: int = 77
    vocab_size: int = 49408
    decoder_layers: int = 2    # GDecoder n_layers
    kernel_size: int = 3


class Block(nn.Module):
    """CLIP's ResidualAttentionBlock; ``self_only`` is the official all-but-diagonal -inf mask,
    under which attention returns each token's own value: ``out_proj(v)``."""

    def __init__(self, width: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, max(width // 64, 1))
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([('c_fc', nn.Linear(width, width * 4)), ('gelu', QuickGELU()),
                                              ('c_proj', nn.Linear(width * 4, width))]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: Tensor, attn_mask: Tensor = None, self_only: bool = False) -> Tensor:
        y = self.ln_1(x)
        if self_only:
            width = y.shape[-1]
            value = F.linear(y, self.attn.in_proj_weight[2 * width:], self.attn.in_proj_bias[2 * width:])
            x = x + self.attn.out_proj(value)
        else:
            x = x + self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class QuickGELU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[Block(width) for _ in range(layers)])


class VisualTrunk(nn.Module):
    """``clip_visual`` without ln_post/proj (moved to ``clip_proj`` by the official encoder)."""

    def __init__(self, arch: TCLArch):
        super().__init__()
        width = arch.width
        self.patch_size = arch.patch_size
        self.conv1 = nn.Conv2d(3, width, arch.patch_size, arch.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(arch.grid ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, arch.layers)

    def positions(self, h: int, w: int) -> Tensor:
        """The official ``interpolate_pos_emb``: bicubic to the token grid unless it is the square one."""
        pos = self.positional_embedding
        size = int((pos.shape[0] - 1) ** 0.5)
        if h * w == pos.shape[0] - 1 and h == w:
            return pos
        grid = pos[1:].reshape(size, size, -1).permute(2, 0, 1)[None]
        grid = F.interpolate(grid, size=(h, w), mode='bicubic', align_corners=False)[0]
        return torch.cat([pos[:1], grid.flatten(1).T])

    def forward(self, image: Tensor, keep: int):
        """(B, 3, H, W) -> (the last block's tokens, the tokens after block ``keep - 1``), LND."""
        x = self.conv1(image)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + self.positions(h, w)
        x = self.ln_pre(x).permute(1, 0, 2)
        blocks = self.transformer.resblocks
        kept = None
        for index, block in enumerate(blocks):
            x = block(x, self_only=index == len(blocks) - 1)
            if index == keep - 1:
                kept = x
        return x, kept, (h, w)


class LNProj(nn.Module):
    """``LNProjLayer``: CLIP's ln_post then proj, on (B, C, H, W) maps."""

    def __init__(self, width: int, embed_dim: int):
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        return (self.ln(x.permute(0, 2, 3, 1)) @ self.proj).permute(0, 3, 1, 2)


class ImageEncoder(nn.Module):
    def __init__(self, arch: TCLArch):
        super().__init__()
        self.clip_visual = VisualTrunk(arch)
        self.clip_proj = LNProj(arch.width, arch.embed_dim)


class TextEncoder(nn.Module):
    """OpenAI CLIP's text tower (``encode_text``)."""

    def __init__(self, arch: TCLArch):
        super().__init__()
        self.transformer = Transformer(arch.text_width, arch.text_layers)
        self.token_embedding = nn.Embedding(arch.vocab_size, arch.text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(arch.context_length, arch.text_width))
        self.ln_final = nn.LayerNorm(arch.text_width)
        self.text_projection = nn.Parameter(torch.zeros(arch.text_width, arch.embed_dim))
        causal = torch.full((arch.context_length, arch.context_length), float('-inf')).triu_(1)
        self.register_buffer('causal', causal, persistent=False)

    def forward(self, tokens: Tensor) -> Tensor:
        x = (self.token_embedding(tokens) + self.positional_embedding).permute(1, 0, 2)
        for block in self.transformer.resblocks:
            x = block(x, attn_mask=self.causal)
        x = self.ln_final(x.permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvBlock(nn.Module):
    """Pre-activation conv: LayerNorm2d, GELU, conv, tanh gate (``ConvBlock(norm='ln', activ='gelu', gate=True)``)."""

    def __init__(self, width: int, kernel_size: int):
        super().__init__()
        self.norm = LayerNorm2d(width)
        self.conv = nn.Conv2d(width, width, kernel_size, padding=kernel_size // 2)
        self.gate = nn.Module()
        self.gate.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.gate.gate) * self.conv(F.gelu(self.norm(x)))


class ResConv(nn.Module):
    """Nearest 2x up-sampling, then two gated residual convs (``ResConv(upsample=True, double=True)``)."""

    def __init__(self, width: int, kernel_size: int):
        super().__init__()
        self.conv = ConvBlock(width, kernel_size)
        self.conv2 = ConvBlock(width, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2)
        x = x + self.conv(x)
        return x + self.conv2(x)


class GDecoder(nn.Module):
    def __init__(self, width: int, layers: int, kernel_size: int):
        super().__init__()
        self.net = nn.Sequential(*[ResConv(width, kernel_size) for _ in range(layers)])


class Sim2Mask(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.full((), 10.0))
        self.b = nn.Parameter(torch.full((), -2.5))


class MaskerEncoder(nn.Module):
    def __init__(self, arch: TCLArch):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.transformer = Transformer(arch.width, arch.layers - arch.ie_freeze)
        self.decoder = nn.Module()
        self.decoder.decoder = GDecoder(arch.width, arch.decoder_layers, arch.kernel_size)
        self.decoder.image_proj = LNProj(arch.width, arch.embed_dim)


class Masker(nn.Module):
    def __init__(self, arch: TCLArch):
        super().__init__()
        self.image_encoder = MaskerEncoder(arch)
        self.sim2mask = Sim2Mask()


class TCLModel(nn.Module):
    """The released ``TCL`` module's inference: ``generate_masks`` without padding and resizing
    (the segmentor does those, as the official method around it does)."""

    def __init__(self, arch: TCLArch):
        super().__init__()
        self.arch = arch
        self.clip_text_encoder = TextEncoder(arch)
        self.clip_image_encoder = ImageEncoder(arch)
        self.masker = Masker(arch)

    @torch.no_grad()
    def build_text_embedding(self, tokens: Tensor) -> Tensor:
        """(N, T, L) tokens -> (N, C): the templates' unnormalised embeddings averaged, then normalised."""
        classes, templates = tokens.shape[:2]
        embeddings = self.clip_text_encoder(tokens.flatten(0, 1)).view(classes, templates, -1).mean(dim=1)
        return F.normalize(embeddings, dim=-1, eps=1e-6)

    @torch.no_grad()
    def masks(self, image: Tensor, text: Tensor):
        """(1, 3, H, W) padded window, (N, C) text -> soft masks (1, N, 4h, 4w) and the
        MaskCLIP feature map of the full CLIP (1, width, h, w) for the keep-prior branch."""
        arch = self.arch
        tokens, kept, (h, w) = self.clip_image_encoder.clip_visual(image, arch.ie_freeze)
        x = kept
        blocks = self.masker.image_encoder.backbone.transformer.resblocks
        for index, block in enumerate(blocks):
            x = block(x, self_only=index == len(blocks) - 1)
        grid = x.permute(1, 2, 0)[:, :, 1:].reshape(x.shape[1], -1, h, w)
        decoder = self.masker.image_encoder.decoder
        embedding = decoder.image_proj(decoder.decoder.net(grid))
        similarity = torch.einsum('bchw,nc->bnhw', F.normalize(embedding, dim=1, eps=1e-6),
                                  F.normalize(text, dim=-1, eps=1e-6))
        masks = torch.sigmoid(similarity * self.masker.sim2mask.w + self.masker.sim2mask.b)
        clip_map = tokens.permute(1, 2, 0)[:, :, 1:].reshape(tokens.shape[1], -1, h, w)
        return masks, clip_map
