"""The whole segmentor against a transcription of the official SCLIP inference code.

The reference below follows the authors' ``SCLIPSegmentation.forward_slide`` /
``forward_feature`` / ``postprocess_result`` and their CLIP ``encode_image(csa=True)``
line by line (on an open_clip model with the same weights), so any glue error between our
tested pieces (normalisation, resize targets, canvas, thresholds) shows up here.
"""
import math
import os.path as osp

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import REPO
from sclip.runner import load_config


def official_encode_image(visual, x):
    """CLIP VisionTransformer.forward(return_all=True, csa=True) of the official code."""
    B, nc, w, h = x.shape
    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1]), x], dim=1)
    if x.shape[1] != visual.positional_embedding.shape[0]:
        pos = visual.positional_embedding
        N = pos.shape[0] - 1
        patch = visual.patch_size[0]
        w0, h0 = w // patch + 0.1, h // patch + 0.1
        patch_pos = F.interpolate(pos[1:].reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), -1).permute(0, 3, 1, 2),
                                  scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode='bicubic')
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(-1, pos.shape[-1])
        x = x + torch.cat([pos[[0]], patch_pos], dim=0)[None]
    else:
        x = x + visual.positional_embedding
    x = visual.ln_pre(x)
    for blk in visual.transformer.resblocks[:-1]:
        x = blk(x)
    blk = visual.transformer.resblocks[-1]
    x = x + custom_attn(blk.attn, blk.ln_1(x))
    x = x + blk.mlp(blk.ln_2(x))
    return visual.ln_post(x) @ visual.proj


def custom_attn(attn_layer, x):
    """The official custom_attn(csa=True), on batch-first input."""
    x = x.transpose(0, 1)  # official code works sequence-first
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5
    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    attn_weights = F.softmax(torch.bmm(q, q.transpose(1, 2)) * scale, dim=-1) + \
        F.softmax(torch.bmm(k, k.transpose(1, 2)) * scale, dim=-1)
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    return attn_layer.out_proj(attn_output).transpose(0, 1)


def official_predict(visual, query_features, query_idx, img, ori_shape, logit_scale, prob_thd, area_thd):
    stride, crop = 112, 224
    batch_size, _, h_img, w_img = img.shape
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    preds = img.new_zeros((batch_size, query_features.shape[0], h_img, w_img))
    count_mat = img.new_zeros((batch_size, 1, h_img, w_img))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * stride, w_idx * stride
            y2, x2 = min(y1 + crop, h_img), min(x1 + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            crop_img = img[:, :, y1:y2, x1:x2]
            feats = official_encode_image(visual, crop_img)
            feats = feats / feats.norm(dim=-1, keepdim=True)
            logits = feats[:, 1:] @ query_features.T
            w, h = crop_img[0].shape[-2] // 16, crop_img[0].shape[-1] // 16
            logits = logits.permute(0, 2, 1).reshape(-1, logits.shape[-1], w, h)
            logits = nn.functional.interpolate(logits, size=crop_img.shape[-2:], mode='bilinear')
            preds += nn.functional.pad(logits, (int(x1), int(preds.shape[3] - x2), int(y1), int(preds.shape[2] - y2)))
            count_mat[:, :, y1:y2, x1:x2] += 1
    preds = preds / count_mat
    seg_logits = nn.functional.interpolate(preds, size=ori_shape, mode='bilinear')[0]
    seg_logits = (seg_logits * logit_scale).softmax(0)
    num_cls, num_queries = max(query_idx) + 1, len(query_idx)
    query_idx = torch.tensor(query_idx)
    if num_cls != num_queries:
        cls_index = nn.functional.one_hot(query_idx).T.view(num_cls, num_queries, 1, 1)
        seg_logits = (seg_logits.unsqueeze(0) * cls_index).max(1)[0]
    if area_thd is not None:
        predictions = nn.functional.one_hot(seg_logits.argmax(0), num_cls).to(seg_logits.dtype)
        area_pred = predictions[:, :, 1:].sum((0, 1), keepdim=True)
        area_pred = (area_pred > area_thd * area_pred.sum()).to(seg_logits.dtype)
        seg_logits[1:] *= area_pred.transpose(0, -1)
    seg_pred = seg_logits.argmax(0, keepdim=True)
    seg_pred[seg_logits.max(0, keepdim=True)[0] < prob_thd] = 0
    return seg_pred


def test_segmentor_matches_official_code(tiny_checkpoint):
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'), {'model.pretrained': tiny_checkpoint})
    model = MODELS.build(cfg.model).eval()
    raw = torch.randint(0, 256, (3, 336, 448), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    sample = SegDataSample(metainfo=dict(ori_shape=(375, 500), img_shape=(336, 448)))
    with torch.no_grad():
        ours = model.test_step(dict(inputs=[raw], data_samples=[sample]))[0].pred_sem_seg.data
        # the official pre-processing: BGR -> RGB, then (x - mean) / std
        mean = torch.tensor([122.771, 116.746, 104.094]).view(3, 1, 1)
        std = torch.tensor([68.501, 66.632, 70.323]).view(3, 1, 1)
        img = ((raw[[2, 1, 0]].float() - mean) / std)[None]
        reference = official_predict(model.backbone.visual, model.class_embeddings, model.names.query_class,
                                     img, (375, 500), 65, 0.1, 0.1)
    assert ours.shape == reference.shape == (1, 375, 500)
    assert (ours == reference).float().mean() >= 0.9999
