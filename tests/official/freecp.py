"""Oracle: FreeCP's inference (chenqi1126/FreeCP @ 6946aa7): ``freecp_segmentor.py``
(``FreeCPSegmentation``: ``create_vocabulary``, ``refinement``, ``redundancy_purification``,
``ambiguity_purification``, ``forward_feature``, ``forward_slide``, ``predict``,
``postprocess_result``; ``get_prompts``, ``scoremap2bbox``, ``dfs``, ``connected_components``),
its vendored open_clip (``model.py`` ``CLIP.cam``; ``transformer.py``
``VisionTransformer.forward_all``, ``interpolate_pos_encoding``, ``custom_attn``) and its vendored
GEM (``open_clip/gem/gem_utils.py``: ``SelfSelfAttention``, ``VanillaAttention``,
``GEMResidualBlock``, ``modified_vit_forward``), one window at a time, sequence-first.

Differences from the official code, none in what it computes: CPU instead of ``.cuda()``; fp32
(``precision='fp16'`` and ``image.half()`` not applied); the ground-truth label file
``predict`` opens is never used for the prediction (its ``seg_label`` is overwritten by the class
list before use), so it is not read; the LLM descriptions are read from the JSON copy of
``prompts/vicuna13b/<dataset>.py`` (configs/class_texts/freecp/); the chunking of the affinity
product (``chunk_size=1000``) is skipped (never reached: at most 171 classes).

Quirks kept:
- The base's last block drops its residual; SCLIP's, MaskCLIP's and CLIP's keep the MLP (on the
  attention output alone), ClearCLIP's not.
- GEM's attention maps are ``attn_ori.mean(0)`` over the *batch*: (heads, N, N); the refinement's
  ``[0]`` then takes head 0 (for the other bases, the mean over heads).
- Boxes are clipped to ``size - 1`` on their exclusive end; a class with no contour gets the
  empty box [0, 0, 0, 0].
- A group's degenerate box adds the whole group and goes on with its other boxes.
"""
from __future__ import annotations

import json
import math
from typing import List, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import layer_norm, mlp
from .gem import resample_abs_pos_embed

_CONTOUR_INDEX = 1 if cv2.__version__.split('.')[0] == '3' else 0
MODEL_TYPES = {'clearclip': 'ClearCLIP', 'sclip': 'SCLIP', 'maskclip': 'MaskCLIP', 'vanilla': 'vanilla', 'gem': 'GEM'}


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, model_type: str = 'ClearCLIP', with_attn: bool = False):
    """``VisionTransformer.custom_attn`` (LND)."""
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    if model_type == 'vanilla':
        qk_attn = torch.bmm(q, k.transpose(1, 2)) * scale
        attn_weights = F.softmax(qk_attn, dim=-1)
    elif model_type == 'MaskCLIP':
        mask = torch.empty(q.shape[1], q.shape[1], dtype=q.dtype).to(q.device)
        mask.fill_(float('-inf'))
        mask.fill_diagonal_(0)
        mask = mask.unsqueeze(0).repeat(q.shape[0], 1, 1)
        attn_weights = F.softmax(mask, dim=-1)
    elif model_type == 'SCLIP':
        qq_attn = torch.bmm(q, q.transpose(1, 2)) * scale
        kk_attn = torch.bmm(k, k.transpose(1, 2)) * scale
        attn_weights = F.softmax(qq_attn, dim=-1) + F.softmax(kk_attn, dim=-1)
    elif model_type == 'ClearCLIP':
        qq_attn = torch.bmm(q, q.transpose(1, 2)) * scale
        attn_weights = F.softmax(qq_attn, dim=-1)

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)

    if with_attn:
        return attn_output, attn_weights.mean(0, keepdim=True)
    return attn_output


def interpolate_pos_encoding(visual: nn.Module, x: Tensor, w: int, h: int) -> Tensor:
    """``VisionTransformer.interpolate_pos_encoding`` of FreeCP's open_clip."""
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
        mode='bicubic',
    )
    assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def forward_all(visual: nn.Module, x: Tensor, model_type: str = 'ClearCLIP', last_n_layers: int = 1):
    """``VisionTransformer.forward_all``: (base path, CLIP's path) projected, and every block's
    CLIP attention (mean over heads)."""
    B, nc, w, h = x.shape
    x = visual.conv1(x)  # shape = [*, width, grid, grid]
    x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
    x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]

    # class embeddings and positional embeddings
    x = torch.cat([visual.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)

    if x.shape[1] != visual.positional_embedding.shape[0]:
        x = x + interpolate_pos_encoding(visual, x, w, h).to(x.dtype)
    else:
        x = x + visual.positional_embedding.to(x.dtype)

    x = layer_norm(visual.ln_pre, x)  # patch_dropout: identity at inference

    x = x.permute(1, 0, 2)  # NLD -> LND
    attn_weights = []
    blocks = visual.transformer.resblocks
    for i, blk in enumerate(blocks[:-last_n_layers]):
        attn_output, attn_weight = custom_attn(blk.attn, layer_norm(blk.ln_1, x), with_attn=True, model_type='vanilla')
        x = x + attn_output
        x = x + mlp(blk, x)
        attn_weights.append(attn_weight)

    x_mod = 0
    for blk in blocks[-last_n_layers:]:
        attn_ori, attn_weight = custom_attn(blk.attn, layer_norm(blk.ln_1, x), with_attn=True, model_type='vanilla')
        attn_mod = custom_attn(blk.attn, layer_norm(blk.ln_1, x), with_attn=False, model_type=model_type)
        x_mod += attn_mod
        if not model_type == 'ClearCLIP':
            x_mod = x_mod + mlp(blk, x_mod)
        x_ori = x + attn_ori
        x_ori = x_ori + mlp(blk, x_ori)
        attn_weights.append(attn_weight)

    x_mod = x_mod.permute(1, 0, 2)  # LND -> NLD
    x_ori = x_ori.permute(1, 0, 2)  # LND -> NLD
    return layer_norm(visual.ln_post, x_mod) @ visual.proj, layer_norm(visual.ln_post, x_ori) @ visual.proj, \
        attn_weights


def self_self_attention(attn: nn.MultiheadAttention, x: Tensor, gem: bool, ss_attn_iter: int = 1,
                        ss_attn_temp: Optional[float] = None) -> list:
    """FreeCP's ``SelfSelfAttention.forward`` (``gem``) / ``VanillaAttention.forward`` (LND in)."""
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
    if not gem:
        return [x_ori.transpose(0, 1), attn_ori.mean(0, keepdim=False)]

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

    return [x.transpose(0, 1), x_ori.transpose(0, 1), attn_ori.mean(0, keepdim=False)]


def gem_residual_block(blk: nn.Module, q_x, gem: bool, attn_weights=None) -> list:
    """FreeCP's ``GEMResidualBlock.forward``."""
    if isinstance(q_x, list):
        if len(q_x) == 2:
            q_x, attn_weights = q_x
            x_gem = q_x
        elif len(q_x) == 3:
            x_gem, q_x, attn_weights = q_x

    outputs = self_self_attention(blk.attn, layer_norm(blk.ln_1, q_x), gem)
    if len(outputs) == 2:
        x_ori_res, attn_weight = outputs
        x_ori_res = blk.ls_1(x_ori_res)
    elif len(outputs) == 3:
        x_gem_res, x_ori_res, attn_weight = outputs
        x_gem_res, x_ori_res = blk.ls_1(x_gem_res), blk.ls_1(x_ori_res)
        x_gem = x_gem + x_gem_res
    # Original
    x_ori = q_x + x_ori_res
    x_ori = x_ori + blk.ls_2(blk.mlp(layer_norm(blk.ln_2, x_ori)))

    if attn_weights is None:
        attn_weights = [attn_weight]
    else:
        attn_weights.append(attn_weight)

    if len(outputs) == 2:
        return [x_ori, attn_weights]
    return [x_gem, x_ori, attn_weights]


def modified_vit_forward(visual: nn.Module, x: Tensor, depth: int = 7):
    """``modified_vit_forward`` of FreeCP's GEM wrapper: (GEM path, CLIP's path) projected, and
    every block's CLIP attention (heads, N, N)."""
    x = visual.conv1(x)  # shape = [*, width, grid, grid]
    grid_h, grid_w = x.shape[2:]
    x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
    x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]

    x = torch.cat([visual.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)

    if x.shape[1] != visual.positional_embedding.shape[1]:
        pos_emb = resample_abs_pos_embed(visual.positional_embedding.unsqueeze(0), new_size=[grid_h, grid_w],
                                         num_prefix_tokens=1, interpolation='bicubic', antialias=True)
    else:
        pos_emb = visual.positional_embedding

    x = x + pos_emb.to(x.dtype)
    x = layer_norm(visual.ln_pre, x)

    x = x.permute(1, 0, 2)  # NLD -> LND
    blocks = visual.transformer.resblocks
    for i, blk in enumerate(blocks):  # apply_gem: i > len - depth is a SelfSelfAttention
        x = gem_residual_block(blk, x, gem=i > len(blocks) - depth)
    x_gem, x, attn_weights = x
    x = x.permute(1, 0, 2)  # LND -> NLD
    x_gem = x_gem.permute(1, 0, 2)  # LND -> NLD

    x = layer_norm(visual.ln_post, x)
    x_gem = layer_norm(visual.ln_post, x_gem)
    x = x @ visual.proj
    x_gem = x_gem @ visual.proj
    return x_gem, x, attn_weights


def cam(net: nn.Module, image: Tensor, text_features: Tensor, model_type: str, logit_scale: float):
    """``CLIP.cam``."""
    with torch.no_grad():
        if model_type == 'GEM':
            image_feature, image_feature_ori, attn_weight = modified_vit_forward(net.visual, image)
        else:
            image_feature, image_feature_ori, attn_weight = forward_all(net.visual, image, model_type)

    # normalized features
    image_feature = image_feature / image_feature.norm(dim=-1, keepdim=True)
    image_feature_ori = image_feature_ori / image_feature_ori.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)

    # cosine similarity as logits
    pixel_logits = logit_scale * image_feature[:, 1:] @ text_features.t()
    class_logits = logit_scale * image_feature_ori[:, :1] @ text_features.t()

    return pixel_logits, class_logits, attn_weight, image_feature


def scoremap2bbox(scoremap, threshold, multi_contour_eval=False):
    scoremap = scoremap.cpu().numpy()
    height, width = scoremap.shape
    scoremap_image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    _, thr_gray_heatmap = cv2.threshold(
        src=scoremap_image,
        thresh=int(threshold * np.max(scoremap_image)),
        maxval=255,
        type=cv2.THRESH_BINARY)
    contours = cv2.findContours(
        image=thr_gray_heatmap,
        mode=cv2.RETR_TREE,
        method=cv2.CHAIN_APPROX_SIMPLE)[_CONTOUR_INDEX]

    if len(contours) == 0:
        return np.asarray([[0, 0, 0, 0]]), 1

    if not multi_contour_eval:
        contours = [max(contours, key=cv2.contourArea)]

    estimated_boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        x0, y0, x1, y1 = x, y, x + w, y + h
        x1 = min(x1, width - 1)
        y1 = min(y1, height - 1)
        estimated_boxes.append([x0, y0, x1, y1])

    return np.asarray(estimated_boxes), len(contours)


def dfs(matrix, visited, node, component):
    visited[node] = True
    component.append(node)
    for neighbor in range(len(matrix)):
        if matrix[node][neighbor] == 1 and not visited[neighbor]:
            dfs(matrix, visited, neighbor, component)


def connected_components(matrix):
    n = len(matrix)
    visited = [False] * n
    components = []
    for node in range(n):
        if not visited[node]:
            component = []
            dfs(matrix, visited, node, component)
            components.append(component)
    return components


def llm_query_features(clip_model: nn.Module, tokenize, class_names: Sequence[str], descriptions_file: str) -> Tensor:
    """``create_vocabulary``'s ``query_featuresLLM``: per name its descriptions (``get_prompts(use_llm=True)``),
    each encoded and normalised, averaged, normalised."""
    with open(descriptions_file) as f:
        dataset_prompts = json.load(f)
    prompts = [dataset_prompts[name] for name in class_names]
    query_features = []
    with torch.no_grad():
        for prompt in prompts:
            query = tokenize(prompt)
            feature = clip_model.encode_text(query)
            feature /= feature.norm(dim=-1, keepdim=True)
            feature = feature.mean(dim=0)
            feature /= feature.norm()
            query_features.append(feature.unsqueeze(0))
    return torch.cat(query_features, dim=0)


class OfficialFreeCP:
    """``FreeCPSegmentation`` on given CLIP weights and name features (``query_features``)."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_featuresLLM: Tensor,
                 query_idx: Sequence[int], model_type: str = 'GEM', slide_stride: int = 112, slide_crop: int = 448,
                 with_bkg: bool = False, ignore_bkg: bool = False, rp_thres: float = 0.15, ap_thres: float = 0.7,
                 logit_scale: float = 100.0, dataset: str = 'voc', mutation: Optional[str] = None):
        self.net = clip_model
        self.model_type = model_type
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.with_bkg = with_bkg
        self.ignore_bkg = ignore_bkg
        self.rp_thres = rp_thres
        self.ap_thres = ap_thres
        self.logit_scale = logit_scale
        self.dataset = dataset
        self.mutation = mutation
        self.patch_size = tuple(clip_model.visual.patch_size)
        self.query_features = query_features
        self.query_featuresLLM = query_featuresLLM
        self.num_queries = len(query_idx)
        self.num_classes = max(query_idx) + 1
        self.num_bkg_prompts = self.num_queries - self.num_classes + 1 if self.with_bkg and not self.ignore_bkg else 0

    def refinement(self, img, normalized_logits, attn_weight_list, cls_label):
        _, c, w, h = normalized_logits.shape
        attn_weight = [aw[:, 1:, 1:] for aw in attn_weight_list]  # (b, hxw, hxw)
        attn_weight = torch.stack(attn_weight, dim=0)[:-1].mean(dim=0).float()[0]
        aff_mat = attn_weight
        trans_mat = aff_mat / torch.sum(aff_mat, dim=0, keepdim=True)
        trans_mat = trans_mat / torch.sum(trans_mat, dim=1, keepdim=True)
        for _ in range(2):
            trans_mat = trans_mat / torch.sum(trans_mat, dim=0, keepdim=True)
            trans_mat = trans_mat / torch.sum(trans_mat, dim=1, keepdim=True)
        trans_mat = (trans_mat + trans_mat.transpose(1, 0)) / 2
        for _ in range(1):
            trans_mat = torch.matmul(trans_mat, trans_mat)

        logits_ref = torch.zeros(img.shape[0], self.num_queries, w, h)
        process_length = len(cls_label)
        aff_masks = torch.zeros(process_length, 1, w * h)
        for i in range(self.num_bkg_prompts, c):
            grayscale_cam = normalized_logits[0, i]
            box, cnt = scoremap2bbox(scoremap=grayscale_cam, threshold=0.4, multi_contour_eval=True)
            aff_mask = torch.zeros((grayscale_cam.shape[0], grayscale_cam.shape[1]))
            for i_ in range(cnt):
                x0_, y0_, x1_, y1_ = box[i_]
                aff_mask[y0_:y1_, x0_:x1_] = 1
            if self.mutation == 'no_box_mask':
                aff_mask[:] = 1
            aff_masks[i - self.num_bkg_prompts] = aff_mask.view(1, grayscale_cam.shape[0] * grayscale_cam.shape[1])

        def _affinity(cam_to_refine, trans_mat, aff_masks):
            trans_mat = trans_mat.unsqueeze(0) * aff_masks
            cam_to_refine = cam_to_refine.view(-1, h * w, 1)
            cam_refined = torch.matmul(trans_mat, cam_to_refine)
            cam_refined = cam_refined.reshape(-1, w, h)
            return cam_refined
        cam_refined = _affinity(normalized_logits[0, self.num_bkg_prompts:c].float(), trans_mat, aff_masks)
        for i in range(process_length):
            cam_refined[i] = (cam_refined[i] - cam_refined[i].min()) / (cam_refined[i].max() - cam_refined[i].min() + 1e-8)
            logits_ref[0, self.num_bkg_prompts + cls_label[i]] = cam_refined[i]

        return logits_ref

    def redundancy_purification(self, logits, logits_ref):
        iou = (logits[0, self.num_bkg_prompts:] * logits_ref[0, self.num_bkg_prompts:]).sum((-1, -2)) / (
            logits[0, self.num_bkg_prompts:].sum((-1, -2)) + logits_ref[0, self.num_bkg_prompts:].sum((-1, -2)) + 1e-8)
        candidate_classes = torch.where(iou > self.rp_thres)[0]
        if self.mutation == 'no_redundancy':
            candidate_classes = torch.arange(len(iou))

        for i in range(self.num_bkg_prompts, logits_ref.shape[1]):
            if i - self.num_bkg_prompts not in candidate_classes:
                logits_ref[:, i] = logits_ref[:, i] * 0.0
        return logits_ref, candidate_classes

    def ambiguity_purification(self, logits, logits_ref, candidate_classes, img):
        postref = logits_ref[0][self.num_bkg_prompts + candidate_classes]
        postref_expanded = postref.unsqueeze(1)
        intersection = torch.minimum(postref_expanded, postref)
        union = torch.maximum(postref_expanded, postref)

        soft_iou_matrix = torch.sum(intersection, (2, 3)) / torch.sum(union, (2, 3))
        soft_iou_matrix[soft_iou_matrix < self.ap_thres] = 0
        soft_iou_matrix[soft_iou_matrix >= self.ap_thres] = 1

        components = connected_components(soft_iou_matrix)
        if len(components) != 0:
            valid_classes = []
            for group in components:
                if len(group) == 1:
                    valid_classes.append(group[0])
                    continue
                fused_activation = postref[group].mean(0)
                box, cnt = scoremap2bbox(scoremap=fused_activation, threshold=0.4, multi_contour_eval=True)
                have_valid = False
                for i_ in range(cnt):
                    x0_, y0_, x1_, y1_ = box[i_] * self.patch_size[0]
                    crop_img = img[:, :, y0_:y1_, x0_:x1_]
                    if y0_ == y1_ or x0_ == x1_:
                        valid_classes.extend(group)
                        continue
                    crop_img = torch.nn.functional.interpolate(crop_img, size=(112, 112), mode='bilinear')
                    _, cls_logits, _, _ = cam(self.net, crop_img,
                                              self.query_featuresLLM[self.num_bkg_prompts + candidate_classes[group]],
                                              self.model_type, self.logit_scale)
                    true_class = group[cls_logits.argmax(-1).squeeze()]
                    valid_classes.extend([true_class])
                    have_valid = True
                if not have_valid:
                    valid_classes.extend(group)
            valid_classes = torch.tensor(valid_classes).unique()

            candidate_classes = candidate_classes[valid_classes]

            for i in range(self.num_bkg_prompts, logits_ref.shape[1]):
                if i - self.num_bkg_prompts not in candidate_classes:
                    logits_ref[:, i] = logits_ref[:, i] * 0.0

        return logits_ref, candidate_classes

    def forward_feature(self, img, cls_label=None, logit_size=None):
        patch_size = self.patch_size
        w, h = img[0].shape[-2] // patch_size[0], img[0].shape[-1] // patch_size[1]

        text_embedding = self.query_features
        logits, cls_logits, attn_weight_list, image_feature = cam(self.net, img, text_embedding, self.model_type,
                                                                  self.logit_scale)

        logits = torch.cat([logits[:, :, :self.num_bkg_prompts],
                            logits[:, :, self.num_bkg_prompts + cls_label]], dim=-1)

        logits = logits.softmax(dim=-1)

        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)
        normalized_logits = (logits - logits.min()) / (logits.max() - logits.min())
        attn_weight = None

        logits_ref = self.refinement(img, normalized_logits, attn_weight_list, cls_label)
        logits_ref, candidate_classes = self.redundancy_purification(logits, logits_ref)
        if len(candidate_classes) > 1 and self.mutation != 'no_ambiguity':
            logits_ref, candidate_classes = self.ambiguity_purification(logits, logits_ref, candidate_classes, img)
        logits = logits_ref
        if logit_size is None:
            logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear')
        else:
            logits = nn.functional.interpolate(logits, size=logit_size, mode='bilinear')

        return logits, cls_logits, attn_weight, candidate_classes

    def forward_slide(self, img, seg_label, ori_shape, stride=112, crop_size=224):
        if type(stride) == int:
            stride = (stride, stride)
        if type(crop_size) == int:
            crop_size = (crop_size, crop_size)

        h_stride, w_stride = stride
        h_crop, w_crop = crop_size
        batch_size, _, h_img, w_img = img.shape
        out_channels = self.num_queries
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        preds = img.new_zeros((batch_size, out_channels, h_img, w_img))
        count_mat = img.new_zeros((batch_size, 1, h_img, w_img))

        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y1 = h_idx * h_stride
                x1 = w_idx * w_stride
                y2 = min(y1 + h_crop, h_img)
                x2 = min(x1 + w_crop, w_img)
                y1 = max(y2 - h_crop, 0)
                x1 = max(x2 - w_crop, 0)
                crop_img = img[:, :, y1:y2, x1:x2]
                crop_cls_label = seg_label

                crop_seg_logit, cls_logits, attn_weight, cls_labels = self.forward_feature(crop_img, crop_cls_label)
                preds += nn.functional.pad(crop_seg_logit,
                                           (int(x1), int(preds.shape[3] - x2), int(y1),
                                            int(preds.shape[2] - y2)))

                count_mat[:, :, y1:y2, x1:x2] += 1
        assert (count_mat == 0).sum() == 0

        preds = preds / count_mat
        logits = nn.functional.interpolate(preds, size=ori_shape, mode='bilinear')
        return logits, seg_label

    def class_labels(self) -> Tensor:
        """``predict``'s ``cls_label`` per ``dataset``."""
        cls_label = torch.tensor(range(self.num_classes))
        if self.dataset in ('voc', 'pc'):
            if not self.ignore_bkg:
                cls_label = cls_label[1:] - 1
        elif self.dataset == 'cocoobj':
            cls_label = cls_label[1:] - 1
        elif self.dataset == 'ade':
            cls_label = torch.tensor(range(self.num_classes + 1))  # ADE need add one bkg class !!!
            cls_label = cls_label[1:] - 1
        return cls_label

    @torch.no_grad()
    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        cls_label = self.class_labels()
        cls_logits = None
        if self.slide_crop > 0:
            seg_logits, _ = self.forward_slide(inputs, cls_label, ori_shape, self.slide_stride, self.slide_crop)
        else:
            seg_logits, cls_logits, attn_weight, candidate_classes = self.forward_feature(inputs, cls_label, ori_shape)
        labels, scores = self.postprocess_result(seg_logits, cls_label)
        if return_logits:
            return labels, seg_logits, scores
        return labels

    def postprocess_result(self, seg_logits, labels):
        seg_logits = seg_logits[0]
        seg_logits = seg_logits[self.num_bkg_prompts + labels]
        if self.with_bkg and not self.ignore_bkg:
            bg_score = torch.pow(1 - torch.max(seg_logits, dim=0, keepdims=True)[0], 1)
            seg_logits = torch.cat([bg_score, seg_logits], dim=0)
            seg_pred = seg_logits.argmax(0, keepdim=False)
            labels = torch.nn.functional.pad(labels + 1, (1, 0), mode='constant')
            seg_pred = labels[seg_pred].unsqueeze(0)
        else:
            seg_pred = seg_logits.argmax(0, keepdim=False)
            seg_pred = labels[seg_pred].unsqueeze(0)
        return seg_pred, seg_logits


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_featuresLLM: Tensor, query_idx: Sequence[int],
            img: Tensor, ori_shape, return_logits: bool = False, **settings):
    """FreeCP's labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W); with
    ``return_logits`` also the canvas logits (1, Q, h, w) and the class scores."""
    return OfficialFreeCP(clip_model, query_features, query_featuresLLM, query_idx,
                          **settings).predict(img, ori_shape, return_logits)
