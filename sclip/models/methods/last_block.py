"""SCLIP, ClearCLIP, NACLIP and the SCLIP paper's ablations: a different attention in the last block(s).

    x_L = x_{L-1} + out_proj(A(ln_1(x_{L-1})) · v)      (residual: SCLIP; none: ClearCLIP, NACLIP)
    x_L = x_L + mlp(ln_2(x_L))                            (MLP: SCLIP; none: ClearCLIP, NACLIP)

with ``A`` any registered attention variant (sclip/models/attention.py): SCLIP's
``softmax(q·qᵀ) + softmax(k·kᵀ)``, ClearCLIP's ``softmax(q·qᵀ)``, NACLIP's
``softmax(k·kᵀ + G)``, CLIP's own, MaskCLIP's identity, ... Blocks before the modified
ones are CLIP's own (read from the shared trunk).
"""
from __future__ import annotations

import inspect
from typing import Optional

from torch import Tensor

from ...errors import SCLIPError
from ..attention import AttentionInputs, attend, get_attention
from ..clip_vit import CLIPViT, Trunk
from .base import Method, TextSide, register_method


class RecordedMaps:
    """``t.recorded[i]``: CLIP's own attention map of block ``i``, computed by the trunk on demand."""

    def __init__(self, trunk: Trunk):
        self.trunk = trunk

    def __getitem__(self, block: int) -> Tensor:
        return self.trunk.attention(int(block))


@register_method('attention')
class LastBlockAttention(Method):
    """The last ``num_modified_blocks`` blocks use ``attention``; the very last one may drop its
    residual connection and/or its MLP."""

    def __init__(self, attention=None, num_modified_blocks: int = 1, last_block_residual: bool = True,
                 last_block_mlp: bool = True):
        super().__init__()
        self.variant, self.attention_kwargs = get_attention(attention or dict(type='csa'))
        self.num_modified_blocks = int(num_modified_blocks)
        self.last_block_residual = bool(last_block_residual)
        self.last_block_mlp = bool(last_block_mlp)

    def setup(self, vit: CLIPViT) -> None:
        if not 1 <= self.num_modified_blocks <= vit.depth:
            raise SCLIPError(f'model.num_modified_blocks={self.num_modified_blocks} must be between 1 and '
                             f'the number of blocks ({vit.depth}).')
        if self.variant.records_layer is not None:  # e.g. early_layer: it reads an unmodified block's map
            name = self.variant.records_layer
            default = inspect.signature(self.variant.weights).parameters[name].default
            layer = int(self.attention_kwargs.get(name, default))
            first_modified = vit.depth - self.num_modified_blocks + 1
            if not 1 <= layer < first_modified:
                raise SCLIPError(f'model.attention.{name}={layer} must name an '
                                 f'unmodified block, 1 to {first_modified - 1}.')
            self.attention_kwargs[name] = layer

    def inputs(self, trunk: Trunk, index: int, x: Tensor) -> AttentionInputs:
        h = trunk.vit.block(index).ln_1(x)
        q, k, v = trunk.qkv(index, x)  # shared by every variant reading CLIP's own block input
        return AttentionInputs(x=h, q=q, k=k, v=v, grid=trunk.grid, recorded=RecordedMaps(trunk))

    def modified_block(self, trunk: Trunk, index: int, x: Tensor) -> Tensor:
        vit, last = trunk.vit, index == trunk.vit.depth
        weighted = attend(self.variant, self.attention_kwargs, self.inputs(trunk, index, x), vit.fused)
        out = vit.block(index).ls_1(vit.attention_output(index, weighted))
        x = x + out if (self.last_block_residual or not last) else out
        if self.last_block_mlp or not last:
            x = x + vit.mlp(index, x)
        return x

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        depth = trunk.vit.depth
        first = depth - self.num_modified_blocks
        x = trunk.tokens(first)
        for index in range(first + 1, depth + 1):
            x = self.modified_block(trunk, index, x)
        return trunk.vit.patch_features(x, trunk.grid)

    def attention_maps(self, trunk: Trunk) -> Tensor:
        depth = trunk.vit.depth
        first = depth - self.num_modified_blocks
        x = trunk.tokens(first)
        for index in range(first + 1, depth):
            x = self.modified_block(trunk, index, x)
        return self.variant.weights(self.inputs(trunk, depth, x), **self.attention_kwargs)
