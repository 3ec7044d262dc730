"""Oracle: GroupViT's zero-shot segmentation (NVlabs/GroupViT @ 13b7861).

Transcribed, close to line by line, on a state dict in the released layout (``checkpoint['model']``):
- models/group_vit.py: ``PatchEmbed``, ``interpolate_pos_encoding`` (models/misc.py), ``AttnBlock``
  (fused qkv), ``GroupingLayer``, ``GroupingBlock`` (``project_group_token``, ``pre_assign_attn`` =
  post-norm ``CrossAttnBlock``), ``AssignAttention`` at test time (no gumbel: ``hard_softmax`` over
  the groups, straight-through expression, ``/ (sum + assign_eps)``; ``return_attn``'s soft map),
  ``GroupViT.forward_features`` / ``forward_image_head`` (avgpool);
- models/transformer.py ``TextTransformer`` (models/utils.py ``ResidualAttentionBlock``, QuickGELU,
  ``nn.MultiheadAttention`` sequence-first, causal mask); models/multi_label_contrastive.py
  ``ProjectMLP`` (Conv1d, BatchNorm1d in eval, ReLU), ``encode_image``, ``encode_text``,
  ``build_text_embedding``; datasets Tokenize (``clip`` BPE, 77 tokens);
- segmentation/evaluation/group_vit_seg.py ``GroupViTSegInference``: ``get_attn_maps`` (chained
  soft maps, ``resize_attn_map``, the ``rescale`` interpolation), ``encode_decode``;
- mmseg 0.27 ``EncoderDecoder.slide_inference`` / ``whole_inference`` (``rescale=True``) and
  ``inference`` (softmax) / ``simple_test`` (argmax), batch of one.

``einops.rearrange`` calls are written as the reshapes/permutes they perform. Test-side reference
code: never imported by ``sclip``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


class Weights:
    """``prefix``-scoped access to a state dict (the official module attribute paths)."""

    def __init__(self, state: Dict[str, Tensor], prefix: str = ''):
        self.state, self.prefix = state, prefix

    def __getitem__(self, name: str) -> Tensor:
        return self.state[self.prefix + name]

    def has(self, name: str) -> bool:
        return self.prefix + name in self.state

    def sub(self, name: str) -> 'Weights':
        return Weights(self.state, self.prefix + name + '.')


def linear(w: Weights, x: Tensor) -> Tensor:
    return F.linear(x, w['weight'], w['bias'] if w.has('bias') else None)


def layer_norm(w: Weights, x: Tensor) -> Tensor:
    return F.layer_norm(x, (x.shape[-1],), w['weight'], w['bias'], 1e-5)


def mlp(w: Weights, x: Tensor) -> Tensor:  # Mlp: fc1, GELU, fc2 (dropout 0)
    return linear(w.sub('fc2'), F.gelu(linear(w.sub('fc1'), x)))


def attention(w: Weights, num_heads: int, query: Tensor, key: Optional[Tensor] = None,
              qkv_fuse: bool = False) -> Tensor:
    """group_vit.py ``Attention.forward`` (no mask)."""
    if qkv_fuse:
        x = query
        B, N, C = x.shape
        qkv = linear(w.sub('qkv'), x).reshape(B, N, 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
    else:
        B, N, C = query.shape
        if key is None:
            key = query
        value = key
        S = key.size(1)
        # rearrange(.., 'b n (h c)-> b h n c')
        q = linear(w.sub('q_proj'), query).reshape(B, N, num_heads, C // num_heads).permute(0, 2, 1, 3)
        k = linear(w.sub('k_proj'), key).reshape(B, S, num_heads, C // num_heads).permute(0, 2, 1, 3)
        v = linear(w.sub('v_proj'), value).reshape(B, S, num_heads, C // num_heads).permute(0, 2, 1, 3)
    scale = (C // num_heads) ** -0.5
    attn = (q @ k.transpose(-2, -1)) * scale
    attn = attn.softmax(dim=-1)
    # rearrange(attn @ v, 'b h n c -> b n (h c)')
    out = (attn @ v).permute(0, 2, 1, 3).reshape(B, N, C)
    return linear(w.sub('proj'), out)


def attn_block(w: Weights, num_heads: int, x: Tensor) -> Tensor:
    x = x + attention(w.sub('attn'), num_heads, layer_norm(w.sub('norm1'), x), qkv_fuse=True)
    x = x + mlp(w.sub('mlp'), layer_norm(w.sub('norm2'), x))
    return x


def cross_attn_block(w: Weights, num_heads: int, query: Tensor, key: Tensor) -> Tensor:
    """``CrossAttnBlock(post_norm=True)``: norm_q, norm_k are Identity."""
    x = query
    x = x + attention(w.sub('attn'), num_heads, query, key)
    x = x + mlp(w.sub('mlp'), layer_norm(w.sub('norm2'), x))
    x = layer_norm(w.sub('norm_post'), x)
    return x


def hard_softmax(logits: Tensor, dim: int) -> Tensor:
    y_soft = logits.softmax(dim)
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = torch.zeros_like(logits, memory_format=torch.legacy_contiguous_format).scatter_(dim, index, 1.0)
    ret = y_hard - y_soft.detach() + y_soft
    return ret


def assign_attention(w: Weights, query: Tensor, key: Tensor, assign_eps: float = 1.0):
    """``AssignAttention.forward(return_attn=True)`` in eval (num_heads=1, hard=True, gumbel only in training)."""
    B, N, C = query.shape
    value = key
    S = key.size(1)
    q = linear(w.sub('q_proj'), query).reshape(B, N, 1, C).permute(0, 2, 1, 3)
    k = linear(w.sub('k_proj'), key).reshape(B, S, 1, C).permute(0, 2, 1, 3)
    v = linear(w.sub('v_proj'), value).reshape(B, S, 1, C).permute(0, 2, 1, 3)
    raw_attn = (q @ k.transpose(-2, -1)) * C ** -0.5
    attn = hard_softmax(raw_attn, dim=-2)  # get_attn: not training -> hard_softmax
    soft_attn = F.softmax(raw_attn, dim=-2)  # get_attn(gumbel=False, hard=False)
    attn = attn / (attn.sum(dim=-1, keepdim=True) + assign_eps)  # sum_assign=False
    out = (attn @ v).permute(0, 2, 1, 3).reshape(B, N, C)
    out = linear(w.sub('proj'), out)
    return out, {'hard': None, 'soft': soft_attn}


def grouping_block(w: Weights, num_heads: int, x: Tensor, group_tokens: Tensor):
    group_tokens = layer_norm(w.sub('norm_tokens'), group_tokens)
    x = layer_norm(w.sub('norm_x'), x)
    # project_group_token
    projected_group_tokens = mlp(w.sub('mlp_inter'), group_tokens.transpose(1, 2)).transpose(1, 2)
    projected_group_tokens = layer_norm(w.sub('norm_post_tokens'), projected_group_tokens)
    projected_group_tokens = cross_attn_block(w.sub('pre_assign_attn'), num_heads, projected_group_tokens, x)
    new_x, attn_dict = assign_attention(w.sub('assign'), projected_group_tokens, x)
    new_x += projected_group_tokens
    if w.has('reduction.1.weight'):
        reduction = linear(w.sub('reduction.1'), layer_norm(w.sub('reduction.0'), new_x))
    else:
        reduction = new_x  # nn.Identity (dim == out_dim)
    new_x = reduction + mlp(w.sub('mlp_channels'), layer_norm(w.sub('norm_new_x'), new_x))
    return new_x, attn_dict


def grouping_layer(w: Weights, depth: int, num_heads: int, num_group_token: int, x: Tensor,
                   prev_group_token: Optional[Tensor]):
    if num_group_token > 0:
        group_token = w['group_token'].expand(x.size(0), -1, -1)
        if w.has('group_projector.0.weight'):
            # group_projector = Sequential(LayerNorm, MixerMlp)
            projected = layer_norm(w.sub('group_projector.0'), prev_group_token)
            projected = mlp(w.sub('group_projector.1'), projected.transpose(1, 2)).transpose(1, 2)
            group_token = group_token + projected
    else:
        group_token = None
    cat_x = x if group_token is None else torch.cat([x, group_token], dim=1)
    for i in range(depth):
        cat_x = attn_block(w.sub(f'blocks.{i}'), num_heads, cat_x)
    if group_token is not None:
        x, group_token = cat_x[:, :-num_group_token], cat_x[:, -num_group_token:]
    else:
        x, group_token = cat_x, None
    attn_dict = None
    if w.has('downsample.norm_tokens.weight'):
        x, attn_dict = grouping_block(w.sub('downsample'), num_heads, x, group_token)
    return x, group_token, attn_dict


def interpolate_pos_encoding(pos_embed: Tensor, H: int, W: int) -> Tensor:
    num_patches = H * W
    N = pos_embed.shape[1]
    if num_patches == N and W == H:
        return pos_embed
    dim = pos_embed.shape[-1]
    patch_pos_embed = F.interpolate(
        pos_embed.reshape(1, int(np.sqrt(N)), int(np.sqrt(N)), dim).permute(0, 3, 1, 2),
        size=(H, W), mode='bicubic', align_corners=False)
    return patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)


def img_encoder(state, arch: dict, x: Tensor):
    """``GroupViT.forward(x, return_feat=True, return_attn=True, as_dict=True)``."""
    w = Weights(state, 'img_encoder.')
    proj = w.sub('patch_embed.proj')
    x = F.conv2d(x, proj['weight'], proj['bias'], stride=proj['weight'].shape[-1])
    hw_shape = x.shape[2:]
    x = layer_norm(w.sub('patch_embed.norm'), x.flatten(2).transpose(1, 2))
    x = x + interpolate_pos_encoding(w['pos_embed'], *hw_shape)
    group_token = None
    attn_dict_list = []
    for i, depth in enumerate(arch['depths']):
        x, group_token, attn_dict = grouping_layer(w.sub(f'layers.{i}'), depth, arch['num_heads'][i],
                                                   arch['num_group_tokens'][i], x, group_token)
        attn_dict_list.append(attn_dict)
    x = layer_norm(w.sub('norm'), x)
    image_x = F.adaptive_avg_pool1d(x.transpose(1, 2), 1)  # self.avgpool
    image_x = torch.flatten(image_x, 1)  # head: Identity (num_classes=0)
    return {'x': image_x, 'feat': x, 'attn_dicts': attn_dict_list}


def project_mlp(w: Weights, x: Tensor) -> Tensor:
    add_dim = x.ndim == 2
    if add_dim:
        x = x.unsqueeze(1)
    x = x.permute(0, 2, 1)  # 'b l c -> b c l'
    if w.has('linear_hidden.0.weight'):
        x = F.conv1d(x, w['linear_hidden.0.weight'], w['linear_hidden.0.bias'])
        bn = w.sub('linear_hidden.1')
        x = F.batch_norm(x, bn['running_mean'], bn['running_var'], bn['weight'], bn['bias'], False, 0.1, 1e-5)
        x = F.relu(x)
    x = F.conv1d(x, w['linear_out.weight'], w['linear_out.bias'])
    x = x.permute(0, 2, 1)
    if add_dim:
        x = x.squeeze(1)
    return x


def encode_image(state, arch: dict, image: Tensor):
    img_outs = img_encoder(state, arch, image)
    return {'image_x': project_mlp(Weights(state, 'img_projector.'), img_outs['x']),
            'image_feat': project_mlp(Weights(state, 'img_projector.'), img_outs['feat'])}


def text_encoder(state, text: Tensor) -> Tensor:
    w = Weights(state, 'text_encoder.')
    width = w['positional_embedding'].shape[1]
    heads = width // 64
    context_length = w['positional_embedding'].shape[0]
    mask = torch.empty(context_length, context_length)
    mask.fill_(float('-inf'))
    mask.triu_(1)
    x = F.embedding(text, w['token_embedding.weight'])
    x = x + w['positional_embedding']
    x = x.permute(1, 0, 2)  # NLD -> LND
    layers = len({k.split('.')[3] for k in state if k.startswith('text_encoder.transformer.resblocks.')})
    for i in range(layers):
        b = w.sub(f'transformer.resblocks.{i}')
        attn = torch.nn.MultiheadAttention(width, heads)
        attn.load_state_dict({'in_proj_weight': b['attn.in_proj_weight'], 'in_proj_bias': b['attn.in_proj_bias'],
                              'out_proj.weight': b['attn.out_proj.weight'], 'out_proj.bias': b['attn.out_proj.bias']})
        attn.eval()
        y = layer_norm(b.sub('ln_1'), x)
        x = x + attn(y, y, y, need_weights=False, attn_mask=mask.to(dtype=x.dtype))[0]
        h = linear(b.sub('mlp.c_fc'), layer_norm(b.sub('ln_2'), x))
        h = h * torch.sigmoid(1.702 * h)  # QuickGELU
        x = x + linear(b.sub('mlp.c_proj'), h)
    x = x.permute(1, 0, 2)  # LND -> NLD
    x = layer_norm(w.sub('ln_final'), x)
    return x[torch.arange(x.shape[0]), text.argmax(dim=-1)]


def build_text_embedding(state, text: Tensor) -> Tensor:
    """``MultiLabelContrastive.build_text_embedding``: text (N, T, L)."""
    num_classes, num_templates = text.shape[:2]
    text = text.reshape(num_classes * num_templates, -1)
    text_tokens = project_mlp(Weights(state, 'text_projector.'), text_encoder(state, text))
    text_tokens = text_tokens.reshape(num_classes, num_templates, -1)
    text_tokens = text_tokens.mean(dim=1)
    return F.normalize(text_tokens, dim=-1)


def resize_attn_map(attentions: Tensor, h: int, w: int, align_corners: bool = False) -> Tensor:
    scale = (h * w // attentions.shape[2]) ** 0.5
    if h > w:
        w_featmap = w // int(np.round(scale))
        h_featmap = attentions.shape[2] // w_featmap
    else:
        h_featmap = h // int(np.round(scale))
        w_featmap = attentions.shape[2] // h_featmap
    assert attentions.shape[2] == h_featmap * w_featmap
    bs, nh, _, groups = attentions.shape
    # 'bs nh (h w) c -> (bs nh) c h w'
    attentions = attentions.reshape(bs, nh, h_featmap, w_featmap, groups).permute(0, 1, 4, 2, 3)
    attentions = attentions.reshape(bs * nh, groups, h_featmap, w_featmap)
    attentions = F.interpolate(attentions, size=(h, w), mode='bilinear', align_corners=align_corners)
    # '(bs nh) c h w -> bs nh h w c'
    return attentions.reshape(bs, nh, groups, h, w).permute(0, 1, 3, 4, 2)


def get_attn_maps(state, arch, img: Tensor, rescale: bool = False) -> List[Tensor]:
    results = img_encoder(state, arch, img)
    attn_maps = []
    prev_attn_masks = None
    for idx, attn_dict in enumerate(results['attn_dicts']):
        if attn_dict is None:
            assert idx == len(results['attn_dicts']) - 1, 'only last layer can be None'
            continue
        attn_masks = attn_dict['soft'].permute(0, 1, 3, 2)  # 'b h g n -> b h n g'
        if prev_attn_masks is None:
            prev_attn_masks = attn_masks
        else:
            prev_attn_masks = prev_attn_masks @ attn_masks
        attn_maps.append(resize_attn_map(prev_attn_masks, *img.shape[-2:]))
    for i in range(len(attn_maps)):
        attn_map = attn_maps[i]
        assert attn_map.shape[1] == 1
        attn_map = attn_map.squeeze(1)
        if rescale:
            attn_map = attn_map.permute(0, 3, 1, 2)
            attn_map = F.interpolate(attn_map, size=img.shape[2:], mode='bilinear', align_corners=False)
            attn_map = attn_map.permute(0, 2, 3, 1)
        attn_maps[i] = attn_map
    return attn_maps


def encode_decode(state, arch, text_embedding: Tensor, with_bg: bool, bg_thresh: float, img: Tensor) -> Tensor:
    """``GroupViTSegInference.encode_decode``."""
    assert img.shape[0] == 1, 'batch size must be 1'
    attn_map = get_attn_maps(state, arch, img, rescale=True)[-1]
    attn_map = attn_map[0]
    img_outs = encode_image(state, arch, img)
    grouped_img_tokens = img_outs['image_feat'].squeeze(0)
    img_avg_feat = img_outs['image_x']
    grouped_img_tokens = F.normalize(grouped_img_tokens, dim=-1)
    img_avg_feat = F.normalize(img_avg_feat, dim=-1)
    onehot_attn_map = F.one_hot(attn_map.argmax(dim=-1), num_classes=attn_map.shape[-1]).to(dtype=attn_map.dtype)
    num_fg_classes = text_embedding.shape[0]
    class_offset = 1 if with_bg else 0
    text_tokens = text_embedding
    num_classes = num_fg_classes + class_offset
    logit_scale = torch.clamp(state['logit_scale'].exp(), max=100)
    group_affinity_mat = (grouped_img_tokens @ text_tokens.T) * logit_scale
    pre_group_affinity_mat = F.softmax(group_affinity_mat, dim=-1)
    avg_affinity_mat = (img_avg_feat @ text_tokens.T) * logit_scale
    avg_affinity_mat = F.softmax(avg_affinity_mat, dim=-1)
    affinity_mask = torch.zeros_like(avg_affinity_mat)
    avg_affinity_topk = avg_affinity_mat.topk(dim=-1, k=min(5, num_fg_classes))
    affinity_mask.scatter_add_(dim=-1, index=avg_affinity_topk.indices, src=torch.ones_like(avg_affinity_topk.values))
    group_affinity_mat.masked_fill_(~affinity_mask.bool(), float('-inf'))
    group_affinity_mat = F.softmax(group_affinity_mat, dim=-1)
    group_affinity_mat *= pre_group_affinity_mat
    pred_logits = torch.zeros(num_classes, *attn_map.shape[:2], device=img.device, dtype=img.dtype)
    pred_logits[class_offset:] = (onehot_attn_map @ group_affinity_mat).permute(2, 0, 1)
    if with_bg:
        bg_thresh = min(bg_thresh, group_affinity_mat.max().item())
        pred_logits[0, (onehot_attn_map @ group_affinity_mat).max(dim=-1).values < bg_thresh] = 1
    return pred_logits.unsqueeze(0)


def slide_inference(encode, img: Tensor, num_classes: int, stride: Sequence[int], crop_size: Sequence[int],
                    ori_shape) -> Tensor:
    """mmseg 0.27 ``EncoderDecoder.slide_inference(img, img_meta, rescale=True)``."""
    h_stride, w_stride = stride
    h_crop, w_crop = crop_size
    batch_size, _, h_img, w_img = img.size()
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    preds = img.new_zeros((batch_size, num_classes, h_img, w_img))
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
            crop_seg_logit = encode(crop_img)
            preds += F.pad(crop_seg_logit, (int(x1), int(preds.shape[3] - x2), int(y1), int(preds.shape[2] - y2)))
            count_mat[:, :, y1:y2, x1:x2] += 1
    assert (count_mat == 0).sum() == 0
    preds = preds / count_mat
    return F.interpolate(preds, size=tuple(ori_shape), mode='bilinear', align_corners=False)


def predict(state: Dict[str, Tensor], arch: dict, tokens: Tensor, class_names: Sequence[str], img: Tensor,
            ori_shape, bg_thresh: float = 0.95, mode: str = 'slide', stride=(224, 224), crop_size=(448, 448),
            return_logits: bool = False):
    """Labels (1, h, w) for ``img`` (1, 3, H, W), normalised as the official pipeline does;
    ``tokens`` (N, T, L): the templates' tokens of the non-background classes (build_seg_inference)."""
    with torch.no_grad():
        with_bg = class_names[0] == 'background'
        text_embedding = build_text_embedding(state, tokens)
        num_classes = len(text_embedding) + (1 if with_bg else 0)

        def encode(crop):
            return encode_decode(state, arch, text_embedding, with_bg, bg_thresh, crop)
        if mode == 'slide':
            seg_logit = slide_inference(encode, img, num_classes, stride, crop_size, ori_shape)
        else:  # whole_inference(rescale=True)
            seg_logit = F.interpolate(encode(img), size=tuple(ori_shape), mode='bilinear', align_corners=False)
        output = F.softmax(seg_logit, dim=1)
        seg_pred = output.argmax(dim=1)
    return (seg_pred, seg_logit) if return_logits else seg_pred
