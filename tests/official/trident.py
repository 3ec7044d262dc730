"""Oracle: the official Trident inference (YuHengsss/Trident @ a93b346, ``trident.py``
``Trident.get_trident_seg`` / ``get_sam_feat`` / ``get_windowed_imgs`` / ``compute_padsize`` /
``postprocess_result``; ``seg_utils/utils.py`` ``preprocess_image``; the vendored open_clip
``transformer.py`` ``VisionTransformer.forward`` / ``custom_attn`` / ``guidance_attn`` /
``get_sam_sim``; the vendored segment_anything ``image_encoder.py`` (every block returns its
attention and values, the encoder keeps the last block's as ``last_attn`` / ``last_v``) and
``predictor.py`` ``SamPredictor.set_image`` / ``set_torch_image`` with ``Sam.preprocess``);
with ``sam_refinement=True`` (official ``eval.py --sam_refine``, which ``eval_all.py`` ->
``dist_test.sh`` passes) ``seg_utils/utils.py`` ``sam_refinement`` / ``split_connected_regions`` /
``map_refinement_coarse`` / ``map_failed_regions`` and ``SamPredictor.predict_torch``, with
segment_anything's own ``PromptEncoder`` / ``MaskDecoder`` / ``Sam.postprocess_masks``.

Injected: DINO ViT-B/16 as ``vfm_features(imgs_norm) -> (B, C, h, w)`` (the network only, as in
proxyclip.py; the official ``feat[:, 1:, :].reshape(nb_im, vfm_h, vfm_w, -1)`` is applied to
its row-major tokens here), and SAM's ``image_encoder`` (segment_anything's ``ImageEncoderViT``,
whose modules this file runs with the vendored forward), and for the refinement SAM's prompt
encoder and mask decoder. Not transcribed: PAMR (``pamr_steps=0`` in every config).

Generalisations for tiny models (identical at the official sizes): ``get_sam_feat``'s hard-coded
``sam_hw = 64`` is the encoder's grid ``img_size // 16``; SAM's heads are read from the encoder
(official: 12 for vit_b, 16 for vit_l / vit_h, its ``sam_heads``); the refinement's mask
prompt size 256 is SAM's ``mask_input_size`` (4 × the embedding grid); ``skimage.measure.label(
connectivity=2)`` (not installed here) is ``scipy.ndimage.label`` with a 3 × 3 structure: the
same 8-connected regions (their numbering only orders the prompts, each decoded alone).

Quirks kept:
- SAM sees ``cv2.imread(img_path)`` (the ORIGINAL file, not the pipeline's image), resized with
  OpenCV to multiples of CLIP's patch; then SAM's ResizeLongestSide.
- ``torch.mean(similarity)`` in ``custom_attn`` is over all windows of the image (one batch).
- ``token_size = (w // p, h // p)`` with ``B, nc, w, h = x.shape`` (swapped; the windows are
  square in every run that does not crash).
- Windows are padded to multiples of 56 and the padding never removed: a window that needs it
  makes the splice fail (a shape mismatch), as officially.
- Cityscapes (``dataset_type == 'CityscapesDataset'``): SAM on the left and right halves apart.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torchvision import transforms

from .common import compute_padsize, embed, layer_norm, postprocess_clearclip, query_index_tensor, residual_block
from .proxyclip import CLIP_MEAN_01, CLIP_STD_01, IMAGENET_MEAN, IMAGENET_STD, UnNormalize, tokens_on_grid

SAM_PIXEL_MEAN = [123.675, 116.28, 103.53]
SAM_PIXEL_STD = [58.395, 57.12, 57.375]


# --- segment_anything (vendored, modified) ---------------------------------------------------
def sam_attention(attn: nn.Module, x: Tensor):
    """``Attention.forward(x, return_attn=True)``."""
    from segment_anything.modeling.image_encoder import add_decomposed_rel_pos
    B, H, W, _ = x.shape
    qkv = attn.qkv(x).reshape(B, H * W, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, B * attn.num_heads, H * W, -1).unbind(0)
    a = (q * attn.scale) @ k.transpose(-2, -1)
    if attn.use_rel_pos:
        a = add_decomposed_rel_pos(a, q, attn.rel_pos_h, attn.rel_pos_w, (H, W), (H, W))
    a = a.softmax(dim=-1)
    x = (a @ v).view(B, attn.num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    x = attn.proj(x)
    v_dst = v.view(B, attn.num_heads, H, W, -1)
    return x, a, v_dst


def sam_block(blk: nn.Module, x: Tensor):
    """``Block.forward(x, return_attn=True)``."""
    from segment_anything.modeling.image_encoder import window_partition, window_unpartition
    shortcut = x
    x = blk.norm1(x)
    if blk.window_size > 0:
        H, W = x.shape[1], x.shape[2]
        x, pad_hw = window_partition(x, blk.window_size)
    x, attn, v = sam_attention(blk.attn, x)
    if blk.window_size > 0:
        x = window_unpartition(x, blk.window_size, pad_hw, (H, W))
    x = shortcut + x
    x = x + blk.mlp(blk.norm2(x))
    return x, attn, v


def sam_encoder(encoder: nn.Module, x: Tensor):
    """``ImageEncoderViT.forward``: features, and ``last_attn`` / ``last_v``."""
    x = encoder.patch_embed(x)
    if encoder.pos_embed is not None:
        x = x + encoder.pos_embed
    for blk in encoder.blocks:
        x, attn, v = sam_block(blk, x)
    last_attn, last_v = attn, v
    x = encoder.neck(x.permute(0, 3, 1, 2))
    return x, last_attn, last_v


class SamPredictor:
    """``SamPredictor.set_image`` (RGB) with ``Sam.preprocess``; ``predict_torch`` when built
    with the prompt encoder and mask decoder (``self.model``, segment_anything's ``Sam``)."""

    def __init__(self, encoder: nn.Module, prompt_encoder: nn.Module = None, mask_decoder: nn.Module = None):
        from segment_anything.modeling import Sam
        from segment_anything.utils.transforms import ResizeLongestSide
        self.encoder = encoder
        if prompt_encoder is not None:
            self.model = Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=mask_decoder,
                             pixel_mean=SAM_PIXEL_MEAN, pixel_std=SAM_PIXEL_STD)
        self.transform = ResizeLongestSide(encoder.img_size)
        dtype = encoder.patch_embed.proj.weight.dtype
        self.pixel_mean = torch.Tensor(SAM_PIXEL_MEAN).view(-1, 1, 1).to(dtype)
        self.pixel_std = torch.Tensor(SAM_PIXEL_STD).view(-1, 1, 1).to(dtype)

    def set_image(self, image: np.ndarray) -> None:
        input_image = self.transform.apply_image(image)
        input_image_torch = torch.as_tensor(input_image)
        input_image_torch = input_image_torch.permute(2, 0, 1).contiguous()[None, :, :, :]
        self.original_size = image.shape[:2]
        self.input_size = tuple(input_image_torch.shape[-2:])
        x = (input_image_torch - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        x = F.pad(x, (0, self.encoder.img_size - w, 0, self.encoder.img_size - h))
        self.features, self.last_attn, self.last_v = sam_encoder(self.encoder, x)

    @property
    def device(self):
        return self.model.device

    def predict_torch(self, point_coords, point_labels, boxes=None, mask_input=None, multimask_output=True,
                      return_logits=False):
        if point_coords is not None:
            points = (point_coords, point_labels)
        else:
            points = None
        sparse_embeddings, dense_embeddings = self.model.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
        low_res_masks, iou_predictions = self.model.mask_decoder(
            image_embeddings=self.features, image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_embeddings, dense_prompt_embeddings=dense_embeddings,
            multimask_output=multimask_output)
        masks = self.model.postprocess_masks(low_res_masks, self.input_size, self.original_size)
        if not return_logits:
            masks = masks > self.model.mask_threshold
        return masks, iou_predictions, low_res_masks


def get_sam_feat(predictor: SamPredictor, tmp_img: np.ndarray, stride: int, sam_heads: int):
    predictor.set_image(tmp_img)
    sam_r = 1.0
    sam_valid_h, sam_valid_w = sam_r * predictor.input_size[0] // stride, sam_r * predictor.input_size[1] // stride
    sam_valid_h, sam_valid_w = int(sam_valid_h), int(sam_valid_w)
    sam_enc_feats = predictor.features[:, :, :sam_valid_h, :sam_valid_w]
    sam_hw = int(sam_r * (predictor.encoder.img_size // 16))  # official: 64
    sam_attn = predictor.last_attn
    sam_attn = sam_attn.view(1, sam_heads, sam_hw, sam_hw, sam_hw, sam_hw)[:, :, :sam_valid_h, :sam_valid_w,
                                                                            :sam_valid_h, :sam_valid_w]
    sam_attn = sam_attn.flatten(2, 3).flatten(3, 4)
    sam_v = predictor.last_v[:, :, :sam_valid_h, :sam_valid_w, :]
    return sam_enc_feats, sam_attn, sam_v, sam_valid_h, sam_valid_w


# --- seg_utils/utils.py ---------------------------------------------------------------------------
def preprocess_image(image: Tensor, stride: int = 16, slide_crop: int = 336) -> Tensor:
    longer_side = max(image.shape[2:])
    h, w = image.shape[2:]
    if h % stride == 0 and w % stride == 0:
        return image
    if longer_side % stride != 0:
        dst_longer = (longer_side // stride + 1) * stride
    else:
        dst_longer = longer_side
    new_h = int(h * dst_longer / longer_side)
    new_w = int(w * dst_longer / longer_side)
    if new_h % stride != 0: new_h = (new_h // stride + 1) * stride  # noqa: E701 (official)
    if new_w % stride != 0: new_w = (new_w // stride + 1) * stride  # noqa: E701
    new_h, new_w = max(new_h, slide_crop), max(new_w, slide_crop)
    return F.interpolate(image, (new_h, new_w), mode='bilinear', align_corners=False)


def split_connected_regions(segmentation: np.ndarray, seg_logits, split_last=False, minimal_area=0,
                            coarse_thresh=0.0):
    from scipy import ndimage
    from torchvision.ops import masks_to_boxes
    C, H, W = segmentation.shape
    regions, boxes, clip_box_score, points = {}, {}, {}, {}
    for c in range(C):
        if not split_last and c == C - 1: continue  # noqa: E701 (official)
        regions[c], points[c], clip_box_score[c], boxes[c] = [], [], [], []
        class_mask = segmentation[c]
        class_logit = seg_logits[c]
        if class_logit.max() < coarse_thresh: continue  # noqa: E701
        labeled_mask, _ = ndimage.label(class_mask, structure=np.ones((3, 3)))  # official: skimage, connectivity=2
        num_regions = labeled_mask.max()

        for region_label in range(1, num_regions + 1):
            region_mask = (labeled_mask == region_label).astype(np.uint8)
            if region_mask.sum() < minimal_area: continue  # noqa: E701
            region_score = class_logit[region_mask.astype(bool)].mean()
            region_logit = class_logit * torch.tensor(region_mask).to(class_logit.device)
            max_pos = torch.argmax(region_logit)
            max_h, max_w = max_pos // class_logit.size(1), max_pos % class_logit.size(1)
            points[c].append(torch.tensor([max_w, max_h]))
            regions[c].append(region_mask)
            clip_box_score[c].append(region_score)

        if len(regions[c]):
            regions[c] = torch.from_numpy(np.stack(regions[c]))
        if regions[c] == []: boxes[c] = regions[c]  # noqa: E701
        else: boxes[c] = masks_to_boxes(regions[c])  # noqa: E701
    return regions, boxes, clip_box_score, points


def map_refinement_coarse(refined_masks, refined_logits, coarse_boxes, seg_logits, img_shape):
    refined_whole_logits = torch.zeros([len(coarse_boxes), img_shape[0], img_shape[1]], device=refined_masks.device)
    cumsum = 0
    for i in range(len(coarse_boxes)):
        if coarse_boxes[i] == []: continue  # noqa: E701
        tmp_cls_num = coarse_boxes[i].shape[0]
        tmp_cls_mask = refined_masks[cumsum:cumsum + tmp_cls_num, 0].sum(dim=0).bool()
        tmp_cls_logit = (refined_logits[cumsum:cumsum + tmp_cls_num, 0] * seg_logits[i]).max(dim=0)
        refined_whole_logits[i] = tmp_cls_logit.values * tmp_cls_mask
        cumsum += tmp_cls_num

    refined_whole_masks = refined_whole_logits.argmax(0, keepdim=True)
    return refined_whole_masks, refined_whole_logits


def map_failed_regions(refined_masks, refined_logits, failed_regions, seg_logits, segmentation):
    failed_area = failed_regions.sum(dim=0, keepdim=True) != 0
    failed_logit = failed_area * seg_logits
    refined_logits = torch.where(failed_logit > refined_logits, failed_logit, refined_logits)
    refined_masks = torch.where(failed_logit.max(dim=0, keepdim=True)[0] > refined_logits.max(dim=0, keepdim=True)[0],
                                segmentation, refined_masks)
    return refined_masks, refined_logits


def sam_refinement(img, segmentations, seg_logits, num_classes, predictor, coarse_thresh=0.0, minimal_area=0,
                   sam_mask_coff=0.005, sam_iou_thresh=0.9):
    down_ratio = 2
    dh, dw = seg_logits.shape[-2] // down_ratio, seg_logits.shape[-1] // down_ratio
    if down_ratio != 1:
        segmentations_down = F.interpolate(segmentations.unsqueeze(0).half(), [dh, dw], mode='nearest').squeeze(0).long()
        seg_logits_down = F.interpolate(seg_logits.unsqueeze(0), [dh, dw], mode='bilinear', align_corners=False).squeeze(0)
    else:
        segmentations_down = segmentations
        seg_logits_down = seg_logits

    if type(img) == str:  # noqa: E721 (official)
        img = cv2.imread(img)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    if coarse_thresh > 0:
        segmentations_down[seg_logits_down.max(0, keepdim=True)[0] < coarse_thresh] = num_classes
        cls_pred = F.one_hot(segmentations_down.squeeze(0).long(), num_classes=num_classes + 1).permute(2, 0, 1).float()
        split_last = False
    else:
        cls_pred = F.one_hot(segmentations_down.squeeze(0).long(), num_classes=num_classes).permute(2, 0, 1).float()
        split_last = True

    coarse_regions, coarse_boxes, coarse_boxes_score, coarse_points = split_connected_regions(
        cls_pred.cpu().numpy(), seg_logits_down, split_last=split_last, minimal_area=minimal_area,
        coarse_thresh=coarse_thresh)
    combined_boxes, combined_points = [], []
    cls_wise_masks, cls_wise_scores, cls_wise_logits = [], [], []
    failed_regions = []
    predictor.features = predictor.features.float()
    mask_side = predictor.model.prompt_encoder.mask_input_size[0]  # official: 256
    for i in range(num_classes):
        tmp_r = coarse_regions.get(i, [])
        tmp_b = coarse_boxes.get(i, [])
        tmp_p = coarse_points.get(i, [])

        if tmp_r == []: continue  # noqa: E701
        cls_wise_r = seg_logits_down[i].unsqueeze(0)
        new_h, new_w = predictor.transform.get_preprocess_shape(img.shape[0], img.shape[1], mask_side)
        cls_wise_r = F.interpolate(cls_wise_r.unsqueeze(0), [new_h, new_w], mode="bilinear", align_corners=False).squeeze(0)
        cls_wise_r = F.pad(cls_wise_r, (0, mask_side - new_w, 0, mask_side - new_h), mode='constant', value=0)
        cls_wise_r = torch.where(cls_wise_r > coarse_thresh, sam_mask_coff * cls_wise_r,
                                 torch.tensor(0.0).type_as(segmentations)).float()
        cls_wise_b = predictor.transform.apply_boxes_torch(tmp_b.type_as(segmentations), [dh, dw]).float()
        cls_wise_p = torch.stack(tmp_p).type_as(segmentations)
        cls_wise_p = predictor.transform.apply_coords_torch(cls_wise_p, [dh, dw]).unsqueeze(1)
        cls_wise_mask, cls_wise_score, cls_wise_logit = predictor.predict_torch(
            point_coords=cls_wise_p.float(),
            point_labels=torch.ones([cls_wise_p.shape[0], 1]).type_as(segmentations).float(),
            boxes=cls_wise_b,
            mask_input=cls_wise_r,
            multimask_output=False,
        )

        valid_masks = (cls_wise_score > sam_iou_thresh).squeeze(-1)
        if valid_masks.sum() != tmp_r.shape[0]:
            failed_regions.append(tmp_r[~valid_masks.cpu()])
        if valid_masks.sum() == 0:
            coarse_boxes[i] = []
            continue
        cls_wise_masks.append(cls_wise_mask[valid_masks])
        cls_wise_scores.append(cls_wise_score[valid_masks])
        cls_wise_logits.append(cls_wise_logit[valid_masks])

        tmp_p = torch.stack(tmp_p)
        tmp_b = tmp_b[valid_masks.cpu()]
        tmp_p = tmp_p[valid_masks.cpu()]
        coarse_boxes[i] = coarse_boxes[i][valid_masks.cpu()]

        combined_boxes.append(tmp_b)
        combined_points.append(tmp_p)

    if len(combined_boxes) == 0:
        return segmentations, None, seg_logits, combined_boxes

    combined_boxes = torch.cat(combined_boxes, dim=0).to(predictor.device)
    masks, scores, logits = torch.cat(cls_wise_masks, dim=0), torch.cat(cls_wise_scores, dim=0), torch.cat(cls_wise_logits, dim=0)
    logits = predictor.model.postprocess_masks(logits, predictor.input_size, predictor.original_size)

    combined_boxes = combined_boxes * down_ratio
    if logits.shape[-1] != img.shape[1] or logits.shape[-2] != img.shape[0]:
        logits = F.interpolate(logits, img.shape[:2], mode='bilinear', align_corners=False)
        masks = logits > predictor.model.mask_threshold

    refined_masks, refined_logits = map_refinement_coarse(masks, logits.sigmoid(), coarse_boxes, seg_logits, img.shape)

    refined_masks = torch.where(refined_logits.sum(dim=0, keepdim=True) == 0, segmentations, refined_masks)
    if len(failed_regions):
        failed_regions = torch.cat(failed_regions, dim=0).to(predictor.device)
        if down_ratio != 1:
            failed_regions = F.interpolate(failed_regions.unsqueeze(0).float(), img.shape[:2],
                                           mode='nearest').squeeze(0).type_as(segmentations)
        refined_masks, refined_logits = map_failed_regions(refined_masks, refined_logits, failed_regions, seg_logits,
                                                           segmentations)

    return refined_masks, scores, refined_logits, combined_boxes


# --- open_clip transformer.py (vendored, modified) ------------------------------------------------
def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, ex_feats: Tensor, beta: float, gamma: float,
                token_size) -> Tensor:
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    B, C, H, W = ex_feats.shape
    q_k = F.normalize(ex_feats.flatten(2, 3), dim=1)
    similarity = torch.einsum("b c m, b c n -> b m n", q_k, q_k)
    similarity = (similarity - torch.mean(similarity) * beta) * gamma
    similarity[similarity < 0.0] = float('-inf')

    mask = similarity.to(q.dtype).unsqueeze(1).repeat(1, num_heads, 1, 1)
    mask = mask.reshape(bsz * num_heads, mask.shape[2], mask.shape[3])
    attn_weights = F.softmax(mask, dim=-1)
    v = v.reshape(bsz * num_heads, token_size[0], token_size[1], head_dim).permute(0, 3, 1, 2)
    v = F.interpolate(v, size=(H, W), mode='bilinear', align_corners=False)
    v = v.permute(0, 2, 3, 1).reshape(bsz * num_heads, H * W, head_dim)

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    return attn_layer.out_proj(attn_output)


def get_sam_sim(sam_v: Tensor, sam_attn: Tensor, cos_fac: float, heads: int, refine_neg_cos: bool = True) -> Tensor:
    sam_v = sam_v.flatten(2, 3)
    sam_v = F.normalize(sam_v, dim=-1)
    sam_sim = torch.einsum("b h m c, b h n c -> b h m n", sam_v, sam_v)
    sim_thresh = cos_fac * sam_sim.mean(dim=1, keepdim=True).mean(dim=-1, keepdim=True)
    if not refine_neg_cos:
        sim_thresh = torch.where(sim_thresh < 0.0, 0.6, sim_thresh)
    sim_thresh = torch.where(sim_thresh > 0.9, 0.9, sim_thresh)
    refined_sam_attn = torch.where(sam_sim > sim_thresh, sam_attn, torch.zeros_like(sam_attn))
    refined_sam_attn = refined_sam_attn.mean(dim=1)
    similarity = refined_sam_attn / refined_sam_attn.sum(dim=-1, keepdim=True)
    return similarity.unsqueeze(0).repeat(1, heads, 1, 1)


def guidance_attn(attn_layer: nn.MultiheadAttention, x: Tensor, token_size, win_sizes, dst_coords, cos_fac,
                  sam_attn, sam_v, vfm_token_size, dst_vh, dst_vw, refine_neg_cos) -> Tensor:
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    win_h, win_w = win_sizes
    v = x
    dst_coords = torch.stack(dst_coords)
    v = v.view(-1, bsz, num_heads, head_dim).permute(1, 2, 0, 3).contiguous()
    v = v.permute(2, 0, 1, 3).flatten(2)

    v_img = v.view(vfm_token_size[0], vfm_token_size[1], bsz, embed_dim).permute(2, 3, 0, 1).contiguous()
    if v_img.shape[-1] % token_size[1] != 0:
        ratio = int(round(vfm_token_size[0] / token_size[0]))
        v_img = F.interpolate(v_img, size=(token_size[0] * ratio, token_size[1] * ratio), mode='bilinear',
                              align_corners=False)
    else:
        ratio = v_img.shape[-1] // token_size[1]

    dst_v = v.new_zeros(1, embed_dim, dst_vh * ratio, dst_vw * ratio)
    count_mat = v.new_zeros(1, 1, dst_vh * ratio, dst_vw * ratio)
    for h_idx in range(win_h):
        for w_idx in range(win_w):
            coord = dst_coords[h_idx * win_w + w_idx]
            raw_v = v_img[h_idx * win_w + w_idx]
            dst_v[0, :, coord[0] * ratio:coord[2] * ratio, coord[1] * ratio:coord[3] * ratio] += raw_v
            count_mat[:, :, coord[0] * ratio:coord[2] * ratio, coord[1] * ratio:coord[3] * ratio] += 1
    dst_v = dst_v / count_mat

    if type(sam_v) is list:  # special case for cityscapes
        attn_weights1 = get_sam_sim(sam_v[0], sam_attn[0], cos_fac, num_heads, refine_neg_cos).type_as(v)
        attn_weights2 = get_sam_sim(sam_v[1], sam_attn[1], cos_fac, num_heads, refine_neg_cos).type_as(v)
        dst_v1, dst_v2 = dst_v[:, :, :, :dst_v.shape[3] // 2], dst_v[:, :, :, dst_v.shape[3] // 2:]
        dst_v1 = F.interpolate(dst_v1, size=(sam_v[0].shape[2], sam_v[0].shape[3]), mode='bilinear', align_corners=False)
        dst_v2 = F.interpolate(dst_v2, size=(sam_v[1].shape[2], sam_v[1].shape[3]), mode='bilinear', align_corners=False)
        dst_v1 = dst_v1.reshape(1, num_heads, head_dim, -1).permute(0, 1, 3, 2).contiguous()
        dst_v2 = dst_v2.reshape(1, num_heads, head_dim, -1).permute(0, 1, 3, 2).contiguous()
        attn_output1 = torch.matmul(attn_weights1, dst_v1).view(1, num_heads, sam_v[0].shape[2], sam_v[0].shape[3], head_dim)
        attn_output2 = torch.matmul(attn_weights2, dst_v2).view(1, num_heads, sam_v[1].shape[2], sam_v[1].shape[3], head_dim)
        attn_output = torch.cat([attn_output1, attn_output2], dim=-2).flatten(2, 3)
        return attn_output.permute(2, 0, 1, 3).flatten(2).contiguous()
    dst_v = F.interpolate(dst_v, size=(sam_v.shape[2], sam_v.shape[3]), mode='bilinear', align_corners=False)
    attn_weights = get_sam_sim(sam_v, sam_attn, cos_fac, num_heads, refine_neg_cos).type_as(v)
    dst_v = dst_v.view(1, num_heads, head_dim, -1).permute(0, 1, 3, 2).contiguous()
    attn_output = torch.matmul(attn_weights, dst_v)
    return attn_output.permute(2, 0, 1, 3).flatten(2).contiguous()


def encode_image(visual: nn.Module, x: Tensor, external_feats: Tensor, beta: float, gamma: float, **kwargs) -> Tensor:
    """``CLIP.encode_image`` -> ``VisionTransformer.forward`` (NLD out, (1, M, D))."""
    B, nc, w, h = x.shape
    x, _ = embed(visual, x)
    token_size = h // visual.patch_size[0], w // visual.patch_size[1]
    x = x.permute(1, 0, 2)
    for blk in visual.transformer.resblocks[:-1]:
        x = residual_block(blk, x)
    x = x[1:]
    for blk in visual.transformer.resblocks[-1:]:
        x = custom_attn(blk.attn, layer_norm(blk.ln_1, x), external_feats, beta, gamma, token_size)
        x = guidance_attn(blk.attn, x, token_size, **kwargs)
    x = x.permute(1, 0, 2)
    x = layer_norm(visual.ln_post, x)
    return x @ visual.proj


# --- trident.py (compute_padsize: common.py's, the same official function) -------------------------
def get_windowed_imgs(img: Tensor, stride: int, crop_size: int, patch_size: int = 16):
    h_stride, w_stride = stride, stride
    h_crop, w_crop = crop_size, crop_size
    batch_size, _, h_img, w_img = img.shape
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    crop_imgs, paddings, patch_locs = [], [], []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1 = h_idx * h_stride
            x1 = w_idx * w_stride
            y2 = min(y1 + h_crop, h_img)
            x2 = min(x1 + w_crop, w_img)
            y1 = max(y2 - h_crop, 0)
            x1 = max(x2 - w_crop, 0)
            crop_img = img[:, :, y1:y2, x1:x2]
            assert y1 % patch_size == 0 and x1 % patch_size == 0
            assert y2 % patch_size == 0 and x2 % patch_size == 0
            patch_locs.append(torch.tensor([y1 // patch_size, x1 // patch_size, y2 // patch_size, x2 // patch_size]))
            H, W = crop_img.shape[2:]
            pad = compute_padsize(H, W, 56)
            if any(pad):
                crop_img = nn.functional.pad(crop_img, pad)
            crop_imgs.append(crop_img)
            paddings.append(pad)
    return torch.cat(crop_imgs, dim=0), paddings, patch_locs, (h_grids, w_grids)


class OfficialTrident:
    """``Trident`` (BaseSegmentor) from an already built CLIP, query features, DINO and SAM encoder."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 vfm_features: Callable[[Tensor], Tensor], sam_encoder: nn.Module, prob_thd: float = 0.0,
                 logit_scale: float = 40, beta: float = 1.2, gamma: float = 3.0, slide_stride: int = 224,
                 slide_crop: int = 336, cos_fac: float = 1.2, refine_neg_cos: bool = True,
                 dataset_type: str = 'PascalVOCDataset', vfm_patch_size: int = 16, sam_refinement: bool = False,
                 coarse_thresh: float = 0.10, minimal_area: int = 225, sam_mask_coff: float = 0.005,
                 sam_iou_thresh: float = 0.9, prompt_encoder: nn.Module = None, mask_decoder: nn.Module = None):
        self.clip = clip_model
        self.clip_stride = clip_model.visual.patch_size[0]  # official: int(model_type[-2:])
        self.vfm = vfm_features
        self.vfm_patch_size = vfm_patch_size
        self.unnorm = UnNormalize(CLIP_MEAN_01, CLIP_STD_01)
        self.norm = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.query_idx = query_index_tensor(query_idx, query_features.device)
        self.query_features = query_features
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.beta, self.gamma = beta, gamma
        self.cos_fac, self.refine_neg_cos = cos_fac, refine_neg_cos
        self.dataset_type = dataset_type
        self.sam_predictor = SamPredictor(sam_encoder, prompt_encoder, mask_decoder)
        self.sam_heads = sam_encoder.blocks[-1].attn.num_heads
        if sam_refinement:
            self.sam_refine = True
            self.coarse_thresh = coarse_thresh
            self.minimal_area = minimal_area
            self.sam_mask_coff = sam_mask_coff
        else:
            self.sam_refine = False
        self.sam_iou_thresh = sam_iou_thresh

    def get_sam_feat(self, tmp_img, stride):
        return get_sam_feat(self.sam_predictor, tmp_img, stride, self.sam_heads)

    @torch.no_grad()
    def get_trident_seg(self, src_img: Tensor, img_path: str, ori_shape) -> Tensor:
        stride = self.clip_stride
        tmp_img = cv2.imread(img_path)
        tmp_img = cv2.cvtColor(tmp_img, cv2.COLOR_BGR2RGB)
        tmp_h, tmp_w = tmp_img.shape[:2]
        if tmp_h % stride != 0: tmp_h = (tmp_h // stride + 1) * stride  # noqa: E701 (official)
        if tmp_w % stride != 0: tmp_w = (tmp_w // stride + 1) * stride  # noqa: E701
        tmp_img = cv2.resize(tmp_img, (tmp_w, tmp_h))
        if self.dataset_type == 'CityscapesDataset':
            tmp_img_1 = tmp_img[:, :tmp_w // 2, :]
            tmp_img_2 = tmp_img[:, tmp_w // 2:, :]
            _, sam_attn_1, sam_v_1, sam_valid_h_1, sam_valid_w_1 = self.get_sam_feat(tmp_img_1, 16)
            _, sam_attn_2, sam_v_2, _, _ = self.get_sam_feat(tmp_img_2, 16)
            sam_attn = [sam_attn_1, sam_attn_2]
            sam_v = [sam_v_1, sam_v_2]
            sam_valid_w = sam_valid_w_1 * 2
            sam_valid_h = sam_valid_h_1
            if self.sam_refine: self.sam_predictor.set_image(tmp_img)  # noqa: E701 (official)
        else:
            _, sam_attn, sam_v, sam_valid_h, sam_valid_w = self.get_sam_feat(tmp_img, 16)

        processed_img = preprocess_image(src_img, stride, self.slide_crop)
        clip_whole_h, clip_whole_w = processed_img.shape[-2:]
        clip_feat_h, clip_feat_w = clip_whole_h // stride, clip_whole_w // stride
        img_batch, paddings, patch_locs, win_sizes = get_windowed_imgs(processed_img, self.slide_stride,
                                                                       self.slide_crop, stride)
        imgs_norm = torch.stack([self.norm(self.unnorm(img_batch[i])) for i in range(len(img_batch))], dim=0)
        patch_size = self.vfm_patch_size
        vfm_h, vfm_w = imgs_norm[0].shape[-2] // patch_size, imgs_norm[0].shape[-1] // patch_size
        vfm_feats = tokens_on_grid(self.vfm(imgs_norm), vfm_h, vfm_w)

        clip_features = encode_image(self.clip.visual, img_batch, vfm_feats, self.beta, self.gamma,
                                     dst_coords=patch_locs, win_sizes=win_sizes, dst_vh=clip_feat_h,
                                     dst_vw=clip_feat_w, sam_attn=sam_attn, sam_v=sam_v, cos_fac=self.cos_fac,
                                     vfm_token_size=(vfm_h, vfm_w), refine_neg_cos=self.refine_neg_cos)
        clip_features /= clip_features.norm(dim=-1, keepdim=True)
        logits = clip_features @ self.query_features.T
        logits = logits.permute(0, 2, 1).reshape(-1, logits.shape[-1], sam_valid_h, sam_valid_w)
        logits = F.interpolate(logits, size=tuple(ori_shape), mode='bilinear')
        return logits.float()

    def postprocess_result(self, seg_logits: Tensor, img_path: str):
        """``postprocess_result`` for one image: (seg_pred, seg_logits) after the refinement."""
        batch_size = seg_logits.shape[0]
        for i in range(batch_size):
            seg_logits = seg_logits[i] * self.logit_scale
            seg_logits = seg_logits.softmax(0)

            num_cls, num_queries = max(self.query_idx) + 1, len(self.query_idx)
            if num_cls != num_queries:
                seg_fg = seg_logits[-num_cls + 1:]
                seg_bg = seg_logits[:-num_cls + 1].max(0)[0]
                seg_logits = torch.cat([seg_bg.unsqueeze(0), seg_fg], dim=0)

            seg_pred = seg_logits.argmax(0, keepdim=True)
            seg_pred[seg_logits.max(0, keepdim=True)[0] < self.prob_thd] = 0

            tmp_img = img_path
            if self.sam_refine:
                refined_masks, scores, refined_logits, prompt_boxes = sam_refinement(
                    tmp_img, seg_pred, seg_logits, num_cls, self.sam_predictor, self.coarse_thresh,
                    self.minimal_area, self.sam_mask_coff, self.sam_iou_thresh)
                seg_pred = refined_masks
                seg_logits = refined_logits
            return seg_pred, seg_logits

    def predict(self, img: Tensor, img_path: str, ori_shape, return_logits: bool = False,
                return_scores: bool = False):
        seg_logits = self.get_trident_seg(img, img_path, ori_shape)
        labels, scores = self.postprocess_result(seg_logits, img_path)
        if return_scores:
            return labels, seg_logits, scores
        return (labels, seg_logits) if return_logits else labels


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, img_path: str,
            ori_shape, return_logits: bool = False, return_scores: bool = False, **settings):
    """Official Trident labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W) read
    from ``img_path`` (and its logits before post-processing, and its class scores after it).
    Settings: vfm_features, sam_encoder (required), prob_thd=0.0, logit_scale=40, beta=1.2,
    gamma=3.0, slide_stride=224, slide_crop=336, cos_fac=1.2, refine_neg_cos=True,
    dataset_type='PascalVOCDataset' (Cityscapes: 'CityscapesDataset'); the refinement:
    sam_refinement=False, coarse_thresh, minimal_area, sam_mask_coff, sam_iou_thresh,
    prompt_encoder, mask_decoder."""
    return OfficialTrident(clip_model, query_features, query_idx, **settings).predict(
        img, img_path, ori_shape, return_logits, return_scores)
