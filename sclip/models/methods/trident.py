"""Trident (Shi et al., ICCV 2025): sub-image features spliced, then aggregated over the whole
image by SAM's correlation.

Per image (official ``Trident.get_trident_seg`` and the vendored open_clip ``custom_attn`` /
``guidance_attn`` / ``get_sam_sim``):

1. The image is resized so that both sides are multiples of CLIP's patch and at least the crop
   (``preprocess_image``); square windows (336, stride 224) cover it.
2. Each window: CLIP's last block attends with DINO ViT-B/16's patch correspondence, as in
   ProxyCLIP, except that the similarity's mean is taken over all windows of the image at once
   (they run as one batch); out-projection, no residual, no MLP, no ln_post yet.
3. Splicing: the windows' outputs are averaged on a canvas of the whole image's CLIP grid.
4. Global aggregation: the canvas is resized to SAM's grid of the whole image and multiplied by
   ``W``, from SAM's last (global) block: with ``a_h`` its attention and ``s_h`` the cosine
   similarity of its value tokens, per head ``h``,

       t = cos_fac · mean_h,n s_h[m, n]               per query m (0.6 where < 0 unless
                                                      ``refine_neg_cos``; at most 0.9)
       W = row-normalised mean_h (a_h where s_h > t, else 0)

   then ``ln_post`` and the projection: one feature per SAM token, whose logits are resized to
   the original size.

SAM sees the original image file (the official code reads ``img_path`` with OpenCV), resized to
multiples of CLIP's patch, then by SAM's own ``ResizeLongestSide``; Cityscapes (``sam_halves``)
gives SAM the left and right halves separately and aggregates each half alone.

With ``sam_refine`` (official ``--sam_refine``, which its ``eval_all.py`` passes), the labels are
then redrawn by SAM's mask decoder prompted from them (sclip/models/sam_refine.py), on the
embedding of the same SAM pass (Cityscapes: a pass over the whole image). SAM's passes depend on
the image and SAM only (``sam_views``), so the segmentor shares them between sweep cells.

Memory: SAM's correlation is built one head at a time from the valid rows and columns; the
official code holds all heads' full (4096 x 4096) attention, its sliced copy, the similarity and
its masked copy at once. ``tests/test_fidelity_trident.py`` checks labels and logits against the
transcription ``tests/official/trident.py``; its memory test bounds our largest tensors by theirs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk
from .base import Method, TextSide, register_method
from .proxyclip import proxy_attention

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)   # segment_anything Sam.pixel_mean / pixel_std
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
PAD_MULTIPLE = 56                             # official compute_padsize(H, W, 56)


def stride_multiple_size(height: int, width: int, stride: int, crop: int) -> Tuple[int, int]:
    """The official ``preprocess_image`` size: unchanged when both sides are multiples of
    ``stride``; else scaled so the longer side is the next multiple, each side rounded up to a
    multiple and to at least ``crop``."""
    if height % stride == 0 and width % stride == 0:
        return height, width
    longer = max(height, width)
    target = longer if longer % stride == 0 else (longer // stride + 1) * stride
    new_h, new_w = int(height * target / longer), int(width * target / longer)
    new_h = new_h if new_h % stride == 0 else (new_h // stride + 1) * stride
    new_w = new_w if new_w % stride == 0 else (new_w // stride + 1) * stride
    return max(new_h, crop), max(new_w, crop)


def sam_image(source: np.ndarray, stride: int) -> np.ndarray:
    """The RGB uint8 image SAM sees: ``source`` resized (OpenCV, bilinear) to multiples of CLIP's patch."""
    import cv2
    height, width = source.shape[:2]
    height = height if height % stride == 0 else (height // stride + 1) * stride
    width = width if width % stride == 0 else (width // stride + 1) * stride
    return cv2.resize(source, (width, height))


def read_rgb(path: str) -> np.ndarray:
    """``cv2.imread`` + BGR->RGB, as the official code reads the image for SAM; one line if unreadable."""
    import cv2
    image = cv2.imread(path)
    if image is None:
        raise SCLIPError(f'{path}: Trident reads the original image for SAM, but OpenCV cannot read it.')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class SAMCorrelation:
    """SAM's last-block attention and values of one image, and Trident's correlation from them."""

    def __init__(self, sam, image: np.ndarray):
        from segment_anything.utils.transforms import ResizeLongestSide
        encoder = self.encoder = sam.encoder
        self.size = encoder.img_size
        self.patch = sam.spec.patch_size
        self.original_size = tuple(image.shape[:2])
        resized = ResizeLongestSide(self.size).apply_image(image)
        self.input_size = resized.shape[:2]
        dtype = encoder.patch_embed.proj.weight.dtype
        device = encoder.patch_embed.proj.weight.device
        x = torch.as_tensor(resized, device=device).permute(2, 0, 1)[None]
        mean = torch.tensor(SAM_PIXEL_MEAN, device=device, dtype=dtype).view(-1, 1, 1)
        std = torch.tensor(SAM_PIXEL_STD, device=device, dtype=dtype).view(-1, 1, 1)
        x = (x - mean) / std
        x = F.pad(x, (0, self.size - x.shape[-1], 0, self.size - x.shape[-2]))
        self.grid = (int(self.input_size[0] // self.patch), int(self.input_size[1] // self.patch))
        self.x, self.q, self.k, self.v, self.last = self._last_block_qkv(encoder, x)

    @staticmethod
    def _last_block_qkv(encoder, x: Tensor):
        x = encoder.patch_embed(x)
        if encoder.pos_embed is not None:
            x = x + encoder.pos_embed
        for block in encoder.blocks[:-1]:
            x = block(x)
        last = encoder.blocks[-1]
        if last.window_size > 0:
            raise SCLIPError("Trident needs SAM's last block to attend globally (segment_anything's "
                             'global_attn_indexes end with the last block).')
        h = last.norm1(x)
        batch, rows, cols, _ = h.shape
        heads = last.attn.num_heads
        qkv = last.attn.qkv(h).reshape(batch, rows * cols, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, batch * heads, rows * cols, -1).unbind(0)
        return x, q, k, v, last

    @property
    def heads(self) -> int:
        return self.q.shape[0]

    def full_attention(self, head: int) -> Tensor:
        """Head ``head``'s attention (G², G²) over the whole padded grid (SAM's ``Attention``)."""
        from segment_anything.modeling.image_encoder import add_decomposed_rel_pos
        attn = self.last.attn
        side = self.size // self.patch
        q = self.q[head:head + 1]
        scores = (q * attn.scale) @ self.k[head:head + 1].transpose(-2, -1)
        if attn.use_rel_pos:
            scores = add_decomposed_rel_pos(scores, q, attn.rel_pos_h, attn.rel_pos_w, (side, side), (side, side))
        return scores.softmax(dim=-1)[0]

    def attention(self, head: int) -> Tensor:
        """Head ``head``'s attention (M, M) among the valid tokens (softmax over all tokens, as SAM)."""
        side = self.size // self.patch
        rows, cols = self.grid
        scores = self.full_attention(head).view(side, side, side, side)
        return scores[:rows, :cols, :rows, :cols].reshape(rows * cols, rows * cols)

    def embedding(self) -> Tensor:
        """The encoder's output (1, C, G, G) (``SamPredictor.features``): the last block finished
        one head at a time, then the neck. For SAM's refinement of the labels."""
        last, side = self.last, self.size // self.patch
        out = torch.stack([self.full_attention(head) @ self.v[head] for head in range(self.heads)])
        out = out.view(1, self.heads, side, side, -1).permute(0, 2, 3, 1, 4).reshape(1, side, side, -1)
        x = self.x + last.attn.proj(out)
        x = x + last.mlp(last.norm2(x))
        return self.encoder.neck(x.permute(0, 3, 1, 2))

    def sam_image(self):
        """The embedding and this picture's geometry, as SAM's refinement reads them."""
        from ..sam_refine import SAMImage
        return SAMImage(self.embedding().float(), tuple(self.input_size), self.original_size, self.size)

    def unit_values(self, head: int) -> Tensor:
        side = self.size // self.patch
        rows, cols = self.grid
        v = self.v[head].view(side, side, -1)[:rows, :cols].reshape(rows * cols, -1)
        return F.normalize(v, dim=-1)

    def weights(self, cos_fac: float, refine_neg_cos: bool) -> Tensor:
        """Trident's aggregation weights W (M, M) (official ``get_sam_sim``), one head at a time.

        The threshold's mean similarity needs no (M, M) matrix: mean_n (v_m · v_n) = v_m · mean_n v_n,
        so each head's similarity is formed once, where it is compared."""
        values = [self.unit_values(head) for head in range(self.heads)]
        mean_similarity = torch.stack([v @ v.mean(dim=0) for v in values]).mean(dim=0)  # (M,)
        threshold = cos_fac * mean_similarity[:, None]
        if not refine_neg_cos:
            threshold = torch.where(threshold < 0.0, 0.6, threshold)
        threshold = torch.where(threshold > 0.9, 0.9, threshold)
        kept_sum = None
        for head, v in enumerate(values):
            kept = self.attention(head).masked_fill_(v @ v.T <= threshold, 0.0)
            if kept_sum is None:
                kept_sum = kept
            else:
                kept_sum += kept  # in place: no fresh (M, M) a head
        kept_sum /= self.heads
        return kept_sum.div_(kept_sum.sum(dim=-1, keepdim=True))


@dataclass
class SAMViews:
    """What SAM computes of one picture, whatever the sweep cell: the correlation of each part
    it aggregates (the whole picture, or its halves), and on demand what SAM's refinement
    prompts (``sam_refine.SAMImage``): the embedding of the same pass, or for halves of a pass
    over the whole picture (official: ``set_image`` again)."""
    sam: object
    picture: np.ndarray
    parts: List[SAMCorrelation]
    _refine: Optional[object] = None

    def refine_image(self):
        if self._refine is None:
            whole = SAMCorrelation(self.sam, self.picture) if len(self.parts) > 1 else self.parts[0]
            self._refine = whole.sam_image()
        return self._refine


@register_method('trident')
class Trident(Method):
    """Trident; DINO is ``model.vfm`` (attached by the segmentor), SAM is built from ``sam``.

    Args:
        beta, gamma: the proxy attention's mean shift and scale (official 1.2, 3.0).
        cos_fac: SAM correlation threshold factor (official 1.2; Cityscapes 3.0, VOC20 0.0).
        refine_neg_cos: keep a negative threshold (official True; ADE20k and Cityscapes False:
            a negative threshold becomes 0.6).
        sam: ``dict(type='sam_vit_b', checkpoint=None, ...)``, as ``model.vfm`` (sclip/models/vfm).
        sam_halves: SAM sees the left and right halves of the image apart (official: when the
            dataset is Cityscapes, ``dataset_type='CityscapesDataset'``).
        sam_refine: SAM's refinement of the labels (official ``eval.py --sam_refine``, which its
            ``eval_all.py`` passes; sclip/models/sam_refine.py), with the official
            ``coarse_thresh`` (per benchmark), ``minimal_area``, ``sam_iou_thresh`` and
            ``sam_mask_coff``. Needs the full SAM checkpoint (prompt encoder, mask decoder).
    """
    needs_vfm = True
    whole_image = True  # the segmentor hands it whole images (``image_features``), not windows

    def __init__(self, beta: float = 1.2, gamma: float = 3.0, cos_fac: float = 1.2, refine_neg_cos: bool = True,
                 sam: Optional[dict] = None, sam_halves: bool = False, sam_refine: bool = False,
                 coarse_thresh: float = 0.2, minimal_area: int = 225, sam_iou_thresh: float = 0.8,
                 sam_mask_coff: float = 0.005):
        super().__init__()
        from ..sam_refine import RefineSettings
        self.beta, self.gamma, self.cos_fac = float(beta), float(gamma), float(cos_fac)
        self.refine_neg_cos, self.sam_halves = bool(refine_neg_cos), bool(sam_halves)
        if not isinstance(sam_refine, bool):
            raise SCLIPError(f'model.method.sam_refine={sam_refine!r} must be True or False.')
        self.sam_refine = sam_refine
        self.refine_settings = RefineSettings(float(coarse_thresh), int(minimal_area), float(sam_iou_thresh),
                                              float(sam_mask_coff))
        self.sam_spec = dict(sam or dict(type='sam_vit_b', checkpoint=None))
        self.vfm = None
        self.crop = None
        self.sam = self._build_sam(self.sam_spec)
        # float32 whatever the precision (official: prompt_encoder / mask_decoder .float())
        self.sam_prompts = self._build_sam(self.sam_spec, prompts=True) if sam_refine else None

    @staticmethod
    def _build_sam(spec: dict, prompts: bool = False):
        from ..vfm import build_vfm
        from ..vfm.sam_decoder import build_sam_prompt_modules
        spec = dict(spec)
        vfm_type = spec.pop('type', None)
        if not vfm_type or not str(vfm_type).startswith('sam_'):
            raise SCLIPError(f'model.method.sam.type={vfm_type!r}: Trident needs a SAM image encoder '
                             "(sam_vit_b, sam_vit_l or sam_vit_h).")
        allowed = ('checkpoint', 'download', 'tiny', 'config_overrides')
        for key in spec:
            if key not in allowed:
                raise SCLIPError(f'model.method.sam.{key} is not a setting (it takes: type, {", ".join(allowed)}).')
        try:
            if prompts:
                return build_sam_prompt_modules(vfm_type, **spec)
            return build_vfm(vfm_type, fused=False, **spec)
        except SCLIPError as error:  # the VFM messages name model.vfm; here the key is model.method.sam
            raise SCLIPError(str(error).replace('model.vfm.', 'model.method.sam.')) from None

    def check_windows(self, crop: int, stride: int, patch: int) -> None:
        """Trident's windows: square crops that are multiples of 56 and of the patch, a stride of
        whole patches (the official code asserts the patch alignment, and fails on padded windows)."""
        if crop <= 0 or crop % PAD_MULTIPLE or crop % patch or stride % patch:
            raise SCLIPError(f'model.slide_crop={crop}, model.slide_stride={stride}: Trident splices unpadded '
                             f'windows of whole {patch}-pixel patches; use a crop that is a multiple of '
                             f'{PAD_MULTIPLE} and of {patch} and a stride that is a multiple of {patch} '
                             '(official: 336 and 224).')

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:  # pragma: no cover
        raise SCLIPError('Trident aggregates whole images; the segmentor calls image_features().')

    # --- per window: ProxyCLIP's attention with the mean over all windows ------------------------
    def window_outputs(self, vit: CLIPViT, windows: Tensor) -> Tensor:
        """The last block's proxy-attention output (n, C, I, J) of all windows of one image."""
        from ..vfm import proxy_input
        features = self.vfm(proxy_input(windows, self.vfm, self.crop))
        rows, cols = features.shape[-2:]
        depth = vit.depth
        x, grid = vit.embed(windows)
        for index in range(1, depth):  # not the Trunk: it would keep every block's output alive
            x = vit.standard_block(index, x)
        _, _, v = vit.qkv(depth, vit.block(depth).ln_1(x))
        n, heads, _, dim = v.shape
        v = v[:, :, 1:].reshape(n * heads, grid[1], grid[0], dim).permute(0, 3, 1, 2)  # official: (w, h) swapped
        v = F.interpolate(v, size=(rows, cols), mode='bilinear', align_corners=False)
        v = v.permute(0, 2, 3, 1).reshape(n, heads, rows * cols, dim)
        attention = proxy_attention(features, self.beta, self.gamma, v.dtype, per_window=False)
        out = vit.attention_output(depth, attention[:, None] @ v)
        return out.transpose(1, 2).reshape(n, -1, rows, cols)

    # --- the whole image -------------------------------------------------------------------------
    def sam_views(self, source: np.ndarray, stride: int) -> SAMViews:
        """SAM's work on the original RGB image ``source`` (resized to multiples of CLIP's patch
        ``stride``): the correlation of the picture or of its halves. Independent of every
        other setting, so a sweep computes it once per image."""
        picture = sam_image(source, stride)
        if self.sam_halves:
            half = picture.shape[1] // 2
            parts = [SAMCorrelation(self.sam, picture[:, :half]), SAMCorrelation(self.sam, picture[:, half:])]
        else:
            parts = [SAMCorrelation(self.sam, picture)]
        return SAMViews(self.sam, picture, parts)

    def image_features(self, vit: CLIPViT, image: Tensor, source: Optional[np.ndarray], crop: int,
                       slide_stride: int, views: Optional[SAMViews] = None) -> Tensor:
        """Features (h, w, D) on SAM's grid for one CLIP-normalised image (3, H, W) and windows of
        ``crop`` by ``slide_stride``; ``source`` is the original RGB image for SAM (None: the input
        image itself, un-normalised); ``views``: ``sam_views(source)`` when already computed."""
        stride = vit.patch_size[0]
        size = stride_multiple_size(*image.shape[-2:], stride, crop)
        processed = image[None]
        if size != tuple(image.shape[-2:]):
            processed = F.interpolate(processed, size, mode='bilinear', align_corners=False)
        windows = window_boxes(size, crop, slide_stride)
        if any(y2 - y1 != crop or x2 - x1 != crop for y1, y2, x1, x2 in windows):
            raise SCLIPError(f'an image of {size[1]}x{size[0]} after resizing is smaller than the {crop}-pixel '
                             'window; the official Trident fails on it (non-square windows).')
        crops = torch.cat([processed[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in windows])
        outputs = self.window_outputs(vit, crops)
        canvas = splice(outputs, windows, size, stride)
        if views is None:
            views = self.sam_views(input_as_rgb(image) if source is None else source, stride)
        if len(views.parts) == 2:
            half = canvas.shape[-1] // 2
            values = [canvas[..., :half], canvas[..., half:]]
        else:
            values = [canvas]
        features = [self.aggregate(vit, part, value) for part, value in zip(views.parts, values)]
        return torch.cat(features, dim=1)

    def refine(self, labels: Tensor, scores: Tensor, views: SAMViews) -> Tuple[Tensor, Tensor]:
        """SAM's refinement of one image's (labels, class probabilities): (scores, labels)."""
        from ..sam_refine import sam_refine
        return sam_refine(labels, scores.float(), views.refine_image(), self.sam_prompts, self.refine_settings)

    def aggregate(self, vit: CLIPViT, sam: SAMCorrelation, canvas: Tensor) -> Tensor:
        """SAM-weighted mean of the spliced canvas (1, C, gh, gw) on SAM's grid, projected (h, w, D)."""
        rows, cols = sam.grid
        values = F.interpolate(canvas, size=(rows, cols), mode='bilinear', align_corners=False)
        values = values.flatten(2)[0].T  # (M, C)
        weights = sam.weights(self.cos_fac, self.refine_neg_cos).to(values.dtype)
        return vit.project(weights @ values).reshape(rows, cols, -1)


def window_boxes(size: Tuple[int, int], crop: int, stride: int) -> List[Tuple[int, int, int, int]]:
    """The official ``get_windowed_imgs`` windows (y1, y2, x1, x2), row-major."""
    from ..sliding_window import window_grid
    return window_grid(size[0], size[1], (crop, crop), (stride, stride))


def splice(outputs: Tensor, windows: Sequence[Tuple[int, int, int, int]], size: Tuple[int, int],
           patch: int) -> Tensor:
    """The windows' outputs (n, C, I, J) averaged on the whole image's grid (1, C, rows, cols)
    (official ``guidance_attn``: the VFM grid is ``ratio`` times CLIP's, resized when it is not
    a multiple of it)."""
    n, channels, rows, cols = outputs.shape
    token = (windows[0][1] - windows[0][0]) // patch
    if cols % token:
        ratio = int(round(rows / token))
        outputs = F.interpolate(outputs, size=(token * ratio, token * ratio), mode='bilinear', align_corners=False)
    else:
        ratio = cols // token
    height, width = size[0] // patch * ratio, size[1] // patch * ratio
    canvas = outputs.new_zeros(1, channels, height, width)
    count = outputs.new_zeros(1, 1, height, width)
    for output, (y1, y2, x1, x2) in zip(outputs, windows):
        box = (slice(None), slice(None), slice(y1 // patch * ratio, y2 // patch * ratio),
               slice(x1 // patch * ratio, x2 // patch * ratio))
        canvas[box] += output
        count[box] += 1
    return canvas / count


def input_as_rgb(image: Tensor) -> np.ndarray:
    """The CLIP-normalised input (3, H, W) back to RGB uint8 (for SAM when no file is known)."""
    from ..vfm import CLIP_MEAN, CLIP_STD
    mean = torch.tensor(CLIP_MEAN, device=image.device).view(3, 1, 1) * 255
    std = torch.tensor(CLIP_STD, device=image.device).view(3, 1, 1) * 255
    rgb = (image.float() * std + mean).round().clamp(0, 255).to(torch.uint8)
    return rgb.permute(1, 2, 0).cpu().numpy()
