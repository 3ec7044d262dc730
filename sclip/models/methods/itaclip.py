"""ITACLIP (Aydın et al., CVPRW 2025): SCLIP's last block fed intermediate attention, several views.

Architecture (m-arda-aydn/ITACLIP ``clip/model.py``, ``attn_self=True``): CLIP's blocks run
unmodified; the correlative attention ``A_i = softmax(q·qᵀ·s) + softmax(k·kᵀ·s)`` (SCLIP's) is
read from the inputs of blocks 7, 8 and 10 and averaged; the last block attends with
``0.5·A_L + 0.5·mean(A_7, A_8, A_10)``, keeps its residual and drops its MLP:

    x_L = x_{L-1} + out_proj(A · v_L)

Image engineering (``itaclip_segmentor.py``, per window): the features of the window, its
grayscale and its Gaussian blur (11×11, σ = 5) are each normalised and averaged (not
re-normalised); the vertically and the horizontally flipped windows are two more views whose
logits, upsampled to the window and flipped back, are averaged; a window's logits are
``w · main + (1 - w) · flips`` (``img_eng_coefficient``).

Its text side (LLM definitions or synonyms mixed into the names) is ``model.text.descriptions``;
its post-processing adds a 3×3 morphological closing of the label map (``model.label_closing``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor
from torchvision.transforms import functional as TF

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk
from .base import Method, TextSide, register_method


def self_attention_weights(q: Tensor, k: Tensor, attn_self: bool) -> Tensor:
    """ITACLIP's ``custom_attn(return_attn=True)``: SCLIP's correlative weights, or CLIP's own."""
    scale = q.shape[-1] ** -0.5
    if attn_self:
        return (q @ q.transpose(-2, -1) * scale).softmax(dim=-1) + (k @ k.transpose(-2, -1) * scale).softmax(dim=-1)
    return ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)


@register_method('itaclip')
class ITACLIP(Method):
    normalizes = True

    def __init__(self, intermediate_layers: Sequence[int] = (7, 8, 10), attn_self: bool = True,
                 image_engineering: bool = True, img_eng_coefficient: float = 0.75,
                 blur_kernel: int = 11, blur_sigma: float = 5.0):
        super().__init__()
        self.intermediate_layers = tuple(int(i) for i in intermediate_layers)
        self.attn_self = bool(attn_self)
        self.image_engineering = bool(image_engineering)
        self.img_eng_coefficient = float(img_eng_coefficient)
        self.blur_kernel = int(blur_kernel)
        self.blur_sigma = float(blur_sigma)
        self.views = 3 if self.image_engineering else 1
        if not 0 <= self.img_eng_coefficient <= 1:
            raise SCLIPError(f'model.method.img_eng_coefficient={img_eng_coefficient} must be in [0, 1].')
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0 or self.blur_sigma <= 0:
            raise SCLIPError(f'model.method.blur_kernel={blur_kernel} must be odd and positive and '
                             f'model.method.blur_sigma={blur_sigma} positive.')

    def setup(self, vit: CLIPViT) -> None:
        if not self.intermediate_layers:
            raise SCLIPError('model.method.intermediate_layers is empty; ITACLIP averages blocks (7, 8, 10).')
        bad = [i for i in self.intermediate_layers if not 1 <= i < vit.depth]
        if bad:
            raise SCLIPError(f'model.method.intermediate_layers: block {bad[0]} is not one of the blocks before '
                             f'the last (1 to {vit.depth - 1}).')

    def weights(self, trunk: Trunk, block: int) -> Tensor:
        q, k, _ = trunk.qkv(block, trunk.tokens(block - 1))
        return self_attention_weights(q, k, self.attn_self)

    def encode(self, trunk: Trunk) -> Tensor:
        """Normalised patch features (B, gh, gw, D) of one view."""
        vit, last = trunk.vit, trunk.vit.depth
        average = torch.stack([self.weights(trunk, block) for block in self.intermediate_layers]).mean(dim=0)
        attention = 0.5 * self.weights(trunk, last) + 0.5 * average
        x = trunk.tokens(last - 1)
        _, _, v = trunk.qkv(last, x)
        x = x + vit.attention_output(last, attention @ v)  # residual kept, no MLP
        features = vit.patch_features(x, trunk.grid)
        return features / features.norm(dim=-1, keepdim=True)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        main = self.encode(trunk)
        if not self.image_engineering:
            return main
        images, vit = trunk.images, trunk.vit
        gray = TF.rgb_to_grayscale(images).expand(-1, 3, -1, -1)
        blurred = TF.gaussian_blur(images, [self.blur_kernel] * 2, [self.blur_sigma] * 2)
        main = torch.stack([main, self.encode(Trunk(vit, gray)), self.encode(Trunk(vit, blurred))]).mean(dim=0)
        flipped = [self.encode(Trunk(vit, images.flip(-2))), self.encode(Trunk(vit, images.flip(-1)))]
        return torch.stack([main] + flipped, dim=1)  # (B, 3, gh, gw, D): the flips in their own frames

    def combine_views(self, logits: Tensor) -> Tensor:
        """``w · main + (1 - w) · mean(vflip⁻¹(vertical view), hflip⁻¹(horizontal view))``."""
        flips = torch.mean(torch.stack([logits[:, 1].flip(-2), logits[:, 2].flip(-1)]), dim=0)
        return self.img_eng_coefficient * logits[:, 0] + (1 - self.img_eng_coefficient) * flips
