"""Oracle: the official CorrCLIP inference (zdk258/CorrCLIP @ 103bc18, ``CorrCLIPv1/``:
``corrclip_segmentor.py`` ``forward_feature`` / ``forward_slide`` / ``predict`` /
``postprocess_result`` / ``generate_mask`` / ``compute_padsize``, the vendored open_clip
``transformer.py`` ``VisionTransformer.forward`` and ``ResidualAttentionBlock``,
``myutils.UnNormalize``).

Injected, as for ProxyCLIP's oracle: the DINO model (``dino(imgs_norm)``, any module whose
``vit.blocks[-1].attn.qkv`` is DINO's last qkv Linear: the official forward hook is registered on
it, and the features are the hook's output) and the region masks (``instance_masks``: the map
``generate_mask`` returns, at the image file's size; SAM2's composition is
``compose_sam2_masks`` below).

Quirks kept:
- The mask merging drops the FIRST unique mask value of the window (the unsegmented pixels when
  the window has any, else its smallest region) and numbers clusters ``10000 + c``: the padding's
  value, so cluster 0 joins the padded pixels.
- ``torch.unique`` region order; the semantic branch handles one window at a time (``masks[0]``).
- DBSCAN is scikit-learn's (``metric='precomputed', eps=0.2, min_samples=1``); without
  scikit-learn installed, the transcription of its neighbourhoods and ``dbscan_inner`` below.
- ``mask.unsqueeze(0) + mask.unsqueeze(1)`` for the first region (its tokens keep every pair
  with similarity above the mean, inside or outside it), the official "method 1".
- ``postprocess_result``: ClearCLIP's thresholding, then the map correction with ``torch.mode``
  over every mask value but the smallest, at the original size.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torchvision import transforms

from .common import compute_padsize, embed, layer_norm, official_fp16, query_index_tensor, window_grid
from .proxyclip import CLIP_MEAN_01, CLIP_STD_01, IMAGENET_MEAN, IMAGENET_STD, UnNormalize


def compose_sam2_masks(masks, shape) -> np.ndarray:
    """``generate_mask``'s SAM2 branch after ``self.mask_generator.generate(image)``."""
    instance_mask = np.zeros((shape[0], shape[1]), dtype=int)
    if len(masks) != 0:
        sorted_anns = sorted(masks, key=(lambda x: x['area']))  # predicted_iou
        instance_id = 1
        for ann in sorted_anns:
            m = ann['segmentation']
            instance_mask[m] = instance_id
            instance_id += 1
    return instance_mask


def sklearn_dbscan(distances: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """``DBSCAN(metric='precomputed', eps, min_samples).fit_predict(distances)``."""
    try:
        from sklearn.cluster import DBSCAN
    except ImportError:
        pass
    else:
        return DBSCAN(metric='precomputed', eps=eps, min_samples=min_samples).fit_predict(distances)
    # sklearn/cluster/_dbscan.py: radius_neighbors on the precomputed matrix (d <= eps), core samples
    neighborhoods = np.empty(distances.shape[0], dtype=object)
    neighborhoods[:] = [np.where(d <= eps)[0] for d in np.asarray(distances, dtype=np.float64)]
    n_neighbors = np.array([len(neighbors) for neighbors in neighborhoods])
    labels = np.full(distances.shape[0], -1, dtype=np.intp)
    core_samples = np.asarray(n_neighbors >= min_samples, dtype=np.uint8)
    # sklearn/cluster/_dbscan_inner.pyx
    label_num = 0
    stack = []
    for i in range(labels.shape[0]):
        if labels[i] != -1 or not core_samples[i]:
            continue
        while True:
            if labels[i] == -1:
                labels[i] = label_num
                if core_samples[i]:
                    neighb = neighborhoods[i]
                    for i in range(neighb.shape[0]):
                        v = neighb[i]
                        if labels[v] == -1:
                            stack.append(v)
            if len(stack) == 0:
                break
            i = stack.pop()
        label_num += 1
    return labels


def masked_multihead_attention(attn: nn.MultiheadAttention, x: Tensor, attn_mask: Tensor) -> Tensor:
    """``attn(x, x, x, need_weights=False, attn_mask=attn_mask)[0]`` (LND) with a bool mask (True:
    not attended), as ``F.multi_head_attention_forward`` computes it: the mask becomes -inf
    added to ``q / sqrt(d) · kᵀ``."""
    tgt_len, bsz, embed_dim = x.shape
    num_heads = attn.num_heads
    head_dim = embed_dim // num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    float_mask = torch.zeros_like(attn_mask, dtype=q.dtype).masked_fill_(attn_mask, float('-inf'))
    q = q / float(head_dim) ** 0.5
    attn_weights = torch.baddbmm(float_mask, q, k.transpose(-2, -1))
    attn_weights = F.softmax(attn_weights, dim=-1)
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(tgt_len, bsz, embed_dim)
    return F.linear(attn_output, attn.out_proj.weight, attn.out_proj.bias)


def residual_block(blk: nn.Module, x: Tensor, attn_mask: Tensor) -> Tensor:
    """The vendored ``ResidualAttentionBlock.forward(x, attn_mask=attn_mask)`` (bool mask kept)."""
    x = x + blk.ls_1(masked_multihead_attention(blk.attn, layer_norm(blk.ln_1, x), attn_mask))
    x = x + blk.ls_2(blk.mlp(layer_norm(blk.ln_2, x)))
    return x


def encode_image(visual: nn.Module, x: Tensor, dino_feats: Tensor, feat_shape, masks: Tensor,
                 dbscan=sklearn_dbscan) -> Tensor:
    """``CLIP.encode_image(img, dino_feats, feat_shape, instance_masks)`` -> (B, M, D)."""
    B, nc, h, w = x.shape
    token_size = h // visual.patch_size[0], w // visual.patch_size[1]

    x, _ = embed(visual, x)
    x = x.permute(1, 0, 2)  # NLD -> LND

    # Some hyperparameters
    ALPHA, BETA = 1.0, 0.5  # Coefficients that balance two additional branches
    num_layers = len(visual.transformer.resblocks)
    if num_layers == 12:
        NUM_SPATIAL = 5
    elif num_layers == 24:
        NUM_SPATIAL = 12
    elif num_layers == 32:
        NUM_SPATIAL = 28
    else:
        NUM_SPATIAL = num_layers - 4
    TAU = 4  # Temperature coefficient
    EPS, MIN_SAMPLES = 0.2, 1  # DBSCAN

    # Value Reconstruction
    similarity = torch.einsum("b m c, b n c -> b m n", dino_feats, dino_feats)

    # Mask Merging
    masks = F.interpolate(masks.float(), size=feat_shape, mode='nearest').int().squeeze(1)
    dino_feats = dino_feats.reshape(B, *feat_shape, -1)
    for batch_idx in range(B):
        mask_values = torch.unique(masks[batch_idx])
        if mask_values.shape[0] > 2:
            region_masks = [idx == masks[batch_idx] for idx in mask_values]
            dino_feat = dino_feats[batch_idx]
            instance_feats = torch.stack([dino_feat[mask].mean(dim=0) for mask in region_masks])
            instance_feats = F.normalize(instance_feats, dim=1)[1:]
            instance_sim = torch.einsum("m c, n c -> m n", instance_feats, instance_feats)

            cluster = dbscan(((instance_sim.max() - instance_sim).cpu().numpy()), EPS, MIN_SAMPLES)
            cluster = torch.from_numpy(cluster).to(x.device)
            cluster = cluster.to(masks.dtype)
            for idx, cluster_v in enumerate(cluster, start=1):
                if cluster_v != -1:
                    masks[batch_idx][region_masks[idx]] = cluster_v + 10000

    # Scope Reconstruction
    for batch_idx in range(B):
        region_masks = [(idx == masks[batch_idx]).view(-1) for idx in torch.unique(masks[batch_idx])]
        equal_idx = torch.zeros_like(similarity[batch_idx]).bool()
        for mask in region_masks[1:]:
            equal_idx += (torch.outer(mask, mask))
        mask = region_masks[0]
        equal_idx += ((mask.unsqueeze(0) + mask.unsqueeze(1)) * (similarity[batch_idx] > similarity[batch_idx].mean()))
        similarity[batch_idx][~equal_idx] = float('-inf')
    attn_weights = (similarity * TAU).softmax(dim=-1)

    # Attn_mask for Semantic Branch (batch size 1)
    masks = F.interpolate(masks.float().unsqueeze(1), size=token_size, mode='nearest').int().squeeze(1)
    masks = masks[0]
    region_masks = [idx == masks for idx in torch.unique(masks)]
    mct = x[:1].repeat(len(region_masks), 1, 1)
    num_mct = mct.shape[0]
    x = torch.cat([mct, x], dim=0)
    attn_mask = torch.zeros((x.shape[0], x.shape[0]), device=x.device).bool()
    attn_mask[num_mct:, num_mct:] = True
    attn_mask[:num_mct, num_mct] = True
    region_masks = torch.stack(region_masks, dim=0)
    attn_mask[:num_mct, num_mct + 1:] = region_masks.view(region_masks.shape[0], -1)
    attn_mask = ~attn_mask

    feats_spatial = []
    for idx, blk in enumerate(visual.transformer.resblocks[:-1]):
        x = residual_block(blk, x, attn_mask)
        if num_layers - 2 - NUM_SPATIAL <= idx <= num_layers - 3:
            feats_spatial.append(x[num_mct:])

    for blk in visual.transformer.resblocks[-1:]:
        # Main Branch and Spatial Branch
        x_main_spatial = torch.cat([x[num_mct:], torch.stack(feats_spatial).mean(0)], dim=1)
        attn_weights = attn_weights.expand(B * 2, -1, -1)
        embed_dim = blk.attn.embed_dim
        v_proj_weight = blk.attn.in_proj_weight.narrow(0, 2 * embed_dim, embed_dim)
        v_proj_bias = blk.attn.in_proj_bias.narrow(0, 2 * embed_dim, embed_dim)
        v = F.linear(layer_norm(blk.ln_1, x_main_spatial), v_proj_weight, v_proj_bias)  # (L, B, C)
        v = v.permute(1, 2, 0)[:, :, 1:]  # B, C, L
        v = v.unflatten(dim=2, sizes=token_size)  # B, C, H, W
        v = F.interpolate(v, size=feat_shape, mode='bilinear', align_corners=False)
        v = v.flatten(2, 3).transpose(1, 2)  # B, L, C
        x_main_spatial = torch.bmm(attn_weights, v)
        x_main_spatial = x_main_spatial.transpose(0, 1).contiguous()
        x_main_spatial = blk.attn.out_proj(x_main_spatial)

        # Semantic Branch
        mct = residual_block(blk, x, attn_mask)[:num_mct, 0]
        expand_masks = F.interpolate(region_masks.unsqueeze(1).to(mct.dtype), size=feat_shape,
                                     mode='nearest').flatten(1, -1)
        x_semantic = expand_masks.T @ mct
        x_semantic = x_semantic.unsqueeze(1)

        x = torch.cat([x_main_spatial, x_semantic], dim=1)

    x = x.permute(1, 0, 2)  # LND -> NLD
    x = layer_norm(visual.ln_post, x)

    x_main, x_spatial, x_semantic = x.chunk(3, dim=0)
    x = x_main + x_spatial * ALPHA + x_semantic * BETA

    x = x @ visual.proj
    return x


class OfficialCorrCLIP:
    """``CorrCLIPSegmentation`` of the official code, from an already built model, text features,
    DINO and region masks."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], dino: nn.Module,
                 prob_thd: float = 0.0, logit_scale: float = 40, slide_stride: int = 112, slide_crop: int = 336,
                 dino_patch_size: int = 8, half: bool = False, dbscan=sklearn_dbscan):
        self.clip = official_fp16(clip_model) if half else clip_model
        self.half = half
        self.dino = dino.half() if half else dino
        self.dino_qkv_output = None
        self.dino_patch_size = dino_patch_size
        self.unnorm = UnNormalize(CLIP_MEAN_01, CLIP_STD_01)
        self.norm = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.query_idx = query_index_tensor(query_idx, query_features.device)
        self.num_queries = len(query_idx)
        self.query_features = query_features
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.dbscan = dbscan

    def _hook_fn_forward_qkv(self, module, input, output):
        self.dino_qkv_output = output

    def forward_feature(self, img: Tensor, masks: Tensor) -> Tensor:
        imgs_norm = [self.norm(self.unnorm(img[i])) for i in range(len(img))]
        imgs_norm = torch.stack(imgs_norm, dim=0)
        if self.half:
            imgs_norm = imgs_norm.half()

        self.dino_qkv_output = None
        handle = self.dino.vit.blocks[-1].attn.qkv.register_forward_hook(self._hook_fn_forward_qkv)
        try:
            self.dino(imgs_norm)  # get_intermediate_layers(imgs_norm, n=1)
        finally:
            handle.remove()

        patch_size = self.dino_patch_size
        feat_shape = (imgs_norm[0].shape[-2] // patch_size, imgs_norm[0].shape[-1] // patch_size)
        nb_im = imgs_norm.shape[0]
        nb_tokens = self.dino_qkv_output.shape[1]

        qkv = self.dino_qkv_output.reshape(nb_im, nb_tokens, 3, -1).permute(2, 0, 1, 3)
        dino_feats = qkv[0] + qkv[1]  # B, L, C
        dino_feats = dino_feats[:, 1:, ]
        dino_feats = F.normalize(dino_feats, dim=-1)

        image_features = encode_image(self.clip.visual, img.half() if self.half else img, dino_feats, feat_shape,
                                      masks, self.dbscan)

        image_features = F.normalize(image_features, dim=-1)
        logits = image_features @ self.query_features.T
        logits = logits.permute(0, 2, 1).reshape(-1, logits.shape[-1], *feat_shape)
        logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear')
        return logits

    def forward_slide(self, img: Tensor, instance_masks: Tensor, ori_shape, stride=112, crop_size=224) -> Tensor:
        batch_size, _, h_img, w_img = img.shape
        preds = img.new_zeros((batch_size, self.num_queries, h_img, w_img))
        count_mat = img.new_zeros((batch_size, 1, h_img, w_img))
        for y1, y2, x1, x2 in window_grid(h_img, w_img, stride, crop_size):
            crop_img = img[:, :, y1:y2, x1:x2]
            crop_instance_masks = instance_masks[:, :, y1:y2, x1:x2]

            H, W = crop_img.shape[2:]
            pad = compute_padsize(H, W, 56)
            if any(pad):
                crop_img = nn.functional.pad(crop_img, pad)
                crop_instance_masks = nn.functional.pad(crop_instance_masks, pad, value=10000)
            crop_seg_logit = self.forward_feature(crop_img, crop_instance_masks).detach()

            if any(pad):
                l, t = pad[0], pad[2]
                crop_seg_logit = crop_seg_logit[:, :, t:t + H, l:l + W]

            preds += nn.functional.pad(crop_seg_logit,
                                       (int(x1), int(preds.shape[3] - x2), int(y1), int(preds.shape[2] - y2)))
            count_mat[:, :, y1:y2, x1:x2] += 1
        assert (count_mat == 0).sum() == 0

        preds = preds / count_mat
        logits = nn.functional.interpolate(preds, size=tuple(ori_shape)[:2], mode='bilinear')
        return logits

    def predict(self, inputs: Tensor, instance_masks: Tensor, ori_shape, return_logits: bool = False):
        """``predict`` for one image: ``instance_masks`` (H0, W0) as ``generate_mask`` returns it."""
        self.instance_masks = instance_masks.unsqueeze(0).int()
        masks = F.interpolate(instance_masks.unsqueeze(0).unsqueeze(1).float(), size=inputs.shape[2:],
                              mode='nearest').int()
        seg_logits = self.forward_slide(inputs, masks, ori_shape, self.slide_stride, self.slide_crop)
        seg_pred, seg_logit = self.postprocess_result(seg_logits)
        return (seg_pred, seg_logits) if return_logits else seg_pred

    def postprocess_result(self, seg_logits: Tensor):
        i = 0
        seg_logit = seg_logits[i] * self.logit_scale
        seg_logit = seg_logit.softmax(0)  # n_queries * h * w

        num_cls, num_queries = max(self.query_idx) + 1, len(self.query_idx)
        if num_cls != num_queries:
            seg_logits_background = seg_logit[:num_queries - num_cls + 1]
            seg_logits_background = seg_logits_background.max(0, keepdim=True)[0]
            seg_logits_stuff = seg_logit[num_queries - num_cls + 1:]
            seg_logit = torch.cat([seg_logits_background, seg_logits_stuff])

        seg_pred = seg_logit.argmax(0, keepdim=True)
        seg_pred[seg_logit.max(0, keepdim=True)[0] < self.prob_thd] = 0

        # Map Correction
        mask_values = torch.unique(self.instance_masks[i])
        mask_values = mask_values[1:]
        masks = mask_values.unsqueeze(1).unsqueeze(1) == self.instance_masks[i].unsqueeze(0).expand(
            len(mask_values), -1, -1)
        masks = masks.unsqueeze(1)
        for mask in masks:
            seg_pred[mask] = torch.mode(seg_pred[mask])[0]
        return seg_pred, seg_logit


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor,
            instance_masks: Tensor, ori_shape, dino: Optional[nn.Module] = None, return_logits: bool = False,
            **settings):
    """Official CorrCLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W) and its
    region masks (H0, W0). Settings (official defaults): prob_thd=0.0, logit_scale=40,
    slide_stride=112, slide_crop=336, dino_patch_size=8, half=False."""
    segmentor = OfficialCorrCLIP(clip_model, query_features, query_idx, dino, **settings)
    return segmentor.predict(img, instance_masks, ori_shape, return_logits=return_logits)
