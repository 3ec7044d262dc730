"""Oracle: the official CLIPer inference without FGC (linsun449/cliper.code @ c05fa41,
``modified_clip/model.py`` ``CLIPer`` (``forward_visual``, ``forward_transformer``, ``custom_attn``
with ``attn_type='fused-attn'``, ``classify``, ``forward``, ``forward_slide``, ``_resize``,
``upsample_pos_emb``), ``ovs/pipeline.py`` ``Pipeline.forward`` with ``--refinement None``,
``ovs/main_ovs.py``'s per-image loop and ``util/miou.py`` ``cam_to_label``).

Defaults of ``util/args.py`` kept: ``fuse_feature=True``, ``attn_type='fused-attn'``; the shipped
configs all have ``select_layer: -1``.

Quirks kept:
- The resized positional embedding goes through ``.half()`` (``upsample_pos_emb``), whatever
  the model's precision.
- Blocks 1..L-1 run ``nn.MultiheadAttention(..., need_weights=True, average_attn_weights=False)``
  (torch 2.x: the explicit path), their per-head weights summed into one tensor ``attn_maps``.
- The last block runs, without residual and MLP, on ``ln_1`` of every block's input
  (``ln_1`` of block i, then the last block's ``ln_1``) and on block L-1's output; each of these L
  calls normalises ``attn_maps`` IN PLACE by its column sums then its row sums before building its
  own weights (symmetrised, minus the column mean, clamped at 0, row-normalised): call k sees
  k + 1 such iterations. The returned attention is the last call's.
- ``seg_last = seg[-1]`` is a view: its thresholding (``< amax * attention_thr -> 0``) also
  changes the last layer inside ``seg.mean(0)``.
- Without FGC ``final_score = amax * 0.5 + amax * 0.5``.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


def resize(image: Image.Image, size: int, patch_size: int) -> Image.Image:
    """``CLIPer._resize``: short side to ``size``, each side rounded to the patch size, bicubic."""
    ori_width, ori_height = image.size
    ratio = size / min(ori_width, ori_height)
    ori_width, ori_height = ori_width * ratio, ori_height * ratio
    h, w = (int(ori_height / patch_size + 0.5) * patch_size,
            int(ori_width / patch_size + 0.5) * patch_size)
    return image.resize((w, h), Image.BICUBIC)


def upsample_pos_emb(emb: Tensor, new_size) -> Tensor:
    first, emb = emb[:1, :], emb[1:, :]
    n, d = emb.size(0), emb.size(1)
    size = int(np.sqrt(n))
    emb = emb.permute(1, 0).view(1, d, size, size)
    emb = F.interpolate(emb, size=new_size, mode='bilinear')
    emb = emb.view(d, -1).contiguous().permute(1, 0)
    emb = torch.cat([first, emb], 0)
    return emb.half()


def mha(attn: nn.MultiheadAttention, x: Tensor) -> Tuple[Tensor, Tensor]:
    """``attn(x, x, x, need_weights=True, average_attn_weights=False)`` on LND input (open_clip's
    modules are batch-first: the same computation, transposed around)."""
    if attn.batch_first:
        out, weights = attn(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), need_weights=True,
                            average_attn_weights=False)
        return out.transpose(0, 1), weights
    return attn(x, x, x, need_weights=True, average_attn_weights=False)


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, attn_mask: Tensor) -> Tuple[Tensor, Tensor]:
    """``custom_attn`` with ``attn_type='fused-attn'`` (``attn_mask`` normalised in place)."""
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    attn_mask /= torch.sum(attn_mask, dim=-2, keepdim=True)
    attn_mask /= torch.sum(attn_mask, dim=-1, keepdim=True)
    attn_mask = (attn_mask + attn_mask.transpose(-2, -1)) / 2
    attn_mask -= attn_mask.mean(-2, keepdim=True)
    attn_mask = torch.clamp(attn_mask, 0)
    attn_mask /= torch.sum(attn_mask, dim=-1, keepdim=True)
    attn_mask = attn_mask.flatten(0, 1)
    attn_weights = torch.repeat_interleave(attn_mask, dim=0, repeats=v.shape[0] // attn_mask.shape[0])
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output, attn_weights


def encode_image(visual: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    """``forward_visual`` + ``forward_transformer`` (fuse_feature, select_layer -1) -> ((L, N, E), (heads, N, N))."""
    patch_size = visual.conv1.kernel_size[0]
    h, w = x.shape[-2], x.shape[-1]
    pos = upsample_pos_emb(visual.positional_embedding, (h // patch_size, w // patch_size))
    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype,
                                                                     device=x.device), x], dim=1)
    x = x + pos.to(x.dtype)
    x = visual.ln_pre(x)
    x = x.permute(1, 0, 2)
    blocks = visual.transformer.resblocks
    layers = len(blocks)
    attn_maps, img_features = 0, torch.zeros([layers] + list(x.shape), device=x.device, dtype=x.dtype)
    for i in range(layers - 1):
        ln_x = blocks[i].ln_1(x)
        img_features[i] = ln_x
        ln_x, attn_map = mha(blocks[i].attn, ln_x)
        attn_maps += attn_map
        x = x + ln_x
        x = x + blocks[i].mlp(blocks[i].ln_2(x))
    model_res = blocks[-1]
    img_features[-1] = x
    for kth, x in enumerate(img_features):
        ln_x, attn = custom_attn(model_res.attn, model_res.ln_1(x), attn_mask=attn_maps)
        img_features[kth] = ln_x
    img_features = visual.ln_post(img_features.squeeze())
    if visual.proj is not None:
        img_features = img_features @ visual.proj
    return img_features, attn


def classify(x: Tensor, text_emb: Tensor, logit_scale: Tensor) -> Tensor:
    x = x / x.norm(dim=-1, keepdim=True)
    norm_text_emb = text_emb / text_emb.norm(dim=-1, keepdim=True)
    return logit_scale * x @ norm_text_emb.to(x.dtype).t()


def forward_slide(visual: nn.Module, img: Tensor, text_features: Tensor, logit_scale: Tensor,
                  stride: int = 112, crop_size: int = 224) -> Tensor:
    patch_size = visual.conv1.kernel_size[0]
    layers = len(visual.transformer.resblocks)
    _, _, h_img, w_img = img.shape
    h_grids = max(h_img - crop_size + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop_size + stride - 1, 0) // stride + 1
    preds = img.new_zeros((layers, len(text_features), h_img // patch_size, w_img // patch_size)).to(img.dtype)
    attns = img.new_zeros((h_img // patch_size, w_img // patch_size, h_img // patch_size, w_img // patch_size))
    count_mat = img.new_zeros((1, h_img // patch_size, w_img // patch_size)).to(img.dtype)
    count_mat_attns = torch.zeros_like(attns)
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * stride, w_idx * stride
            y2, x2 = min(y1 + crop_size, h_img), min(x1 + crop_size, w_img)
            y1, x1 = max(y2 - crop_size, 0), max(x2 - crop_size, 0)
            crop_img = img[:, :, y1:y2, x1:x2]
            cts_h, cts_w = crop_img.shape[-2] // patch_size, crop_img.shape[-1] // patch_size
            cts_y1, cts_y2 = y1 // patch_size, y2 // patch_size
            cts_x1, cts_x2 = x1 // patch_size, x2 // patch_size
            img_feature, attn = encode_image(visual, crop_img)
            img_feature = img_feature[:, 1:]
            seg = classify(img_feature, text_features, logit_scale)
            seg = seg.transpose(-1, -2).reshape(-1, len(text_features), cts_h, cts_w)
            attns[cts_y1: cts_y2, cts_x1: cts_x2,
                  cts_y1: cts_y2, cts_x1: cts_x2] += attn.mean(0)[1:, 1:].reshape(cts_h, cts_w, cts_h, cts_w)
            count_mat_attns[cts_y1: cts_y2, cts_x1: cts_x2, cts_y1: cts_y2, cts_x1: cts_x2] += 1
            preds[..., cts_y1: cts_y2, cts_x1: cts_x2] += seg
            count_mat[..., cts_y1: cts_y2, cts_x1: cts_x2] += 1
    preds /= count_mat
    attns /= count_mat_attns + 1e-5
    attns = attns.flatten(0, 1).flatten(-2, -1)
    attns /= attns.sum(dim=-1, keepdim=True)
    preds = preds.flatten(-2, -1) @ attns
    return preds.unflatten(-1, sizes=(h_img // patch_size, w_img // patch_size))


def cliper_seg(visual: nn.Module, img: Tensor, fg_text_features: Tensor, bg_text_features: Tensor,
               cfg: Dict) -> Tensor:
    """``CLIPer.forward`` -> ``seg`` (C, h, w) on the patch grid."""
    patch_size = visual.conv1.kernel_size[0]
    img_h, img_w = img.shape[2] // patch_size, img.shape[3] // patch_size
    logit_scale = nn.Parameter(torch.tensor(cfg['logit_scale']), requires_grad=False)
    text_features = torch.cat([fg_text_features, bg_text_features, fg_text_features.mean(0, True)], dim=0)
    with torch.no_grad():
        img_feature, attn = encode_image(visual, img)
        seg = classify(img_feature, text_features, logit_scale)[:, 1:]
        seg = seg.transpose(-1, -2).reshape(-1, len(text_features), img_h, img_w)
        seg = seg.softmax(-3)[:, :len(fg_text_features)]
        if cfg['sliding_crop_size'] > 0:
            seg_slide = forward_slide(visual, img, text_features, logit_scale,
                                      crop_size=cfg['sliding_crop_size']).to(seg.dtype)
            seg_slide = seg_slide.softmax(-3)[:, :len(fg_text_features)]
            seg = seg_slide * 0.5 + seg * 0.5
        seg_last = seg[-1]
        seg_last[seg_last < seg_last.amax((-1, -2), keepdim=True) * cfg['attention_thr']] = 0
        seg_last = seg_last.flatten(-2, -1) @ attn.mean(0)[1:, 1:]
        seg_last = seg_last.unflatten(dim=-1, sizes=(img_h, img_w))
        seg = seg_last + seg.mean(0)
    return seg.detach()


def cam_to_label(cam, cls_label, bkg_thre=0.3, cls_thre=0.4, is_normalize=True):
    b, c, h, w = cam.shape
    cls_label_rep = (cls_label > cls_thre).unsqueeze(-1).unsqueeze(-1).repeat([1, 1, h, w])
    reshape_cam = cam.reshape(b, c, -1)
    if is_normalize:
        reshape_cam -= reshape_cam.amin(dim=-1, keepdim=True)
        reshape_cam /= reshape_cam.amax(dim=-1, keepdim=True) + 1e-6
    if bkg_thre > 0:
        reshape_cam[reshape_cam < bkg_thre] = 0
        reshape_cam = reshape_cam.reshape(b, c, h, w)
        valid_cam = cls_label_rep * reshape_cam
        cam_value, _pseudo_label = valid_cam.max(dim=1, keepdim=False)
        _pseudo_label += 1
        _pseudo_label[cam_value == 0] = 0
    else:
        reshape_cam = reshape_cam.reshape(b, c, h, w)
        valid_cam = cls_label_rep * reshape_cam
        valid_cam = torch.cat([torch.pow(1 - valid_cam.amax(dim=1, keepdim=True), 2), valid_cam], dim=1)
        _pseudo_label = valid_cam.argmax(dim=1)
    return valid_cam, _pseudo_label


def predict(visual: nn.Module, img: Tensor, fg_text_features: Tensor, bg_text_features: Tensor,
            ori_size: Tuple[int, int], cfg: Dict) -> Tuple[Tensor, Tensor]:
    """``Pipeline.forward`` (no refinement) + ``main_ovs.py``'s loop -> (pred_mask (C, H, W),
    arg_mask (H, W): 0 the background, c + 1 the c-th class)."""
    seg = cliper_seg(visual, img, fg_text_features, bg_text_features, cfg)
    final_score = seg.amax(dim=(-1, -2))
    pred_mask = seg
    final_score = pred_mask.amax(dim=(-1, -2)) * 0.5 + final_score * 0.5
    pred_mask = F.interpolate(pred_mask[None], size=ori_size, mode='bilinear')[0]
    pred_mask = pred_mask / (pred_mask.amax((-1, -2), keepdim=True) + 1e-5) * final_score[..., None, None]
    _, arg_mask = cam_to_label(pred_mask[None].clone(), cls_label=final_score[None], bkg_thre=cfg['bkg_thre'],
                               cls_thre=cfg['score_threshold'], is_normalize=cfg['is_normalize'])
    return pred_mask, arg_mask[0]


# --- the official data side (``data/*/..._datasets.py``, ``CLIPer.preprocess``, ``CLIPer.classifier``) ----

def preprocess(path: str, size: int, patch_size: int) -> Tensor:
    """``Image.open`` then ``ttf.Compose([self._resize] + preprocess.transforms[2:])``: the resize,
    ``_convert_image_to_rgb``, ``ToTensor``, ``Normalize`` (OpenAI's mean and std)."""
    import torchvision.transforms as ttf
    image = resize(Image.open(path), size, patch_size).convert('RGB')
    tensor = ttf.ToTensor()(image)
    return ttf.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))(tensor)


def classifier(model: nn.Module, tokenize, classnames, templates) -> Tensor:
    """``CLIPer.classifier``: per name, the normalised mean of its normalised template prompts."""
    with torch.no_grad():
        zeroshot_weights = []
        for classname in classnames:
            texts = tokenize([template.format(classname) for template in templates])
            class_embeddings = model.encode_text(texts)
            class_embeddings /= class_embeddings.norm(dim=-1, keepdim=True)
            class_embedding = class_embeddings.mean(dim=0)
            class_embedding /= class_embedding.norm()
            zeroshot_weights.append(class_embedding)
        zeroshot_weights = torch.stack(zeroshot_weights, dim=1)
    return zeroshot_weights.t()


def class_file(path: str):
    """(background words, categories) as every official dataset class reads its class file."""
    import re
    lines = open(path).read().splitlines()
    return re.split(r"[\s,]+", lines[0]), lines[1:]


def samples(dataset: str, img: Tensor, mask_path: str):
    """The official dataset's ``(img, mask)`` items of one file: ``mask`` as ``__getitem__`` returns
    it (COCO-Stuff and Cityscapes: + 1 where not 255; Cityscapes: two items, the right part then
    the left one, split at the mask's and the image's height)."""
    mask = torch.tensor(np.array(Image.open(mask_path)))
    if dataset == 'coco_stuff164':
        mask[mask != 255] = mask[mask != 255] + 1
    if dataset != 'cityscapes':
        return [(img, mask)]
    items = []
    for idx in range(2):
        mh, ih = mask.shape[-2], img.shape[-2]
        if idx % 2 == 0:
            part, part_img = mask[:, mh:], img[..., ih:]
        else:
            part, part_img = mask[:, :mh], img[..., :ih]
        part = part.clone()
        part[part != 255] = part[part != 255] + 1
        items.append((part_img, part))
    return items
