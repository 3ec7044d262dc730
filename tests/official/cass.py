"""Oracle: the official CASS inference (MICV-yonsei/CASS @ 228ecdd: ``cass_segmentor.py``
``CASS_segmentor`` (``hierarchical_clustering``, ``hierarchical_prompt``, ``forward_feature``,
``forward_slide``, ``predict``, ``postprocess_result``), ``clip/model.py``
``VisionTransformer.forward`` / ``custom_attn`` and its helpers, ``dino/dino_attention.py``
``DinoSelfAttention.forward``, ``dinov2/dino_attention.py`` ``Dinov2SelfAttention.forward``).

Injected: ``dino_qkv(img) -> qkv`` (3, 1, heads, tokens, d), the DINO network's last-block
qkv for a preprocessed (1, 3, h, w) image (DINO's ``get_intermediate_feat(img)[2][-1]``,
DINOv2's ``get_last_self_attention(img)``); the oracle builds the network's input itself, from
the PIL image exactly as the official code does. The query features are given (the official
``_encode_text_features``: 80 templates, normalised, averaged, normalised).

Kept as officially:
- the benchmark comes from the config file name (``dataset='./configs/cfg_<name>.py'``):
  ``voc20`` / ``city_scapes`` skip the singular-value stretch, ``city_scapes`` takes the
  window's own CLS; every other name the whole image's CLS while sliding.
- ``optimal_q``'s loop is transcribed as written (it always returns at q = 10); its randomised
  SVD draws from the global torch generator, which the caller seeds (mmengine: 42 at start).
- the DINO key tensor is cast to fp16 (``dino_attn.half()``) whatever the rest's dtype; the
  cost matrix is float32 (``torch.zeros``); eigenvalues float64.
- the assignment pairs CLIP head ``row_ind[idx]`` with DINO head ``col_ind[idx]`` though the
  cost matrix's columns are CLIP's heads.
- the whole image's forward while sliding also runs DINO on the window's picture, then returns
  the CLS before reading it: dead work, not transcribed.
- scikit-learn's ``cosine_distances`` (not installed here) is transcribed below.
- ``postprocess_result``: ClearCLIP's (no area threshold); PAMR off (``eval_all.sh``).
- ``scale_up=True`` (the project page's scale-up version): the constructor's ``clip.load('ViT-L/14')``
  is the injected ``cls_net`` and its ``_encode_text_features`` the injected ``cls_query_features``.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform
from torch import Tensor
from torchvision import transforms as pth_transforms
from torchvision import transforms

from .common import averaged_windows, embed, layer_norm, postprocess_clearclip, query_index_tensor, residual_block


def sklearn_cosine_distances(X: np.ndarray) -> np.ndarray:
    """``sklearn.metrics.pairwise.cosine_distances(X)`` (1.x): ``check_pairwise_arrays`` keeps
    float32 and makes anything else float64; ``normalize`` (row norms by einsum, norms below
    10 eps set to 1); ``X_n @ X_n.T``; ``S *= -1; S += 1``; clip to [0, 2]; zero diagonal."""
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    X = np.array(X, dtype=dtype)
    norms = np.sqrt(np.einsum('ij,ij->i', X, X))
    constant_mask = norms < 10 * np.finfo(norms.dtype).eps
    norms[constant_mask] = 1.0
    X_normalized = X / norms[:, np.newaxis]
    S = X_normalized @ X_normalized.T
    S *= -1
    S += 1
    np.clip(S, 0, 2, out=S)
    S[np.diag_indices_from(S)] = 0.0
    return S


# --- clip/model.py VisionTransformer ---------------------------------------------------------

def gaussian_window(dim1, dim2, std=1.):
    constant = 1 / (std * math.sqrt(2))
    ks = list()
    for dim in [dim1, dim2]:
        start = -(dim - 1) / 2.0
        k = torch.linspace(start=start * constant,
                           end=(start + (dim - 1)) * constant,
                           steps=dim,
                           dtype=torch.float)
        ks.append(k)
    dist_square_to_mu = (torch.stack(torch.meshgrid(*ks, indexing='ij')) ** 2).sum(0)
    return torch.exp(-dist_square_to_mu)


def get_attention_addition(dim1, dim2, window, adjust_for_cls=False):
    m = torch.einsum('ij,kl->ijkl', torch.eye(dim1), torch.eye(dim2))
    m = m.permute((0, 3, 1, 2)).contiguous()  # m[ijkl] = 1 iff (i, j) == (k, l)
    out = F.conv2d(m.view(-1, dim1, dim2).unsqueeze(1), window.unsqueeze(0).unsqueeze(1), padding='same').squeeze(1)
    out = out.view(dim1 * dim2, dim1 * dim2)
    if adjust_for_cls:
        v_adjusted = torch.vstack([torch.zeros((1, dim1 * dim2)), out])
        out = torch.hstack([torch.zeros((dim1 * dim2 + 1, 1)), v_adjusted])
    return out


def optimal_q(dino_key_adj, energy_threshold=0.95, initial_q=10, step_size=5):
    max_q = min(dino_key_adj.shape)
    current_q = initial_q

    while current_q <= max_q:
        u, s, vh = torch.svd_lowrank(dino_key_adj.type(torch.float64), q=current_q)

        total_energy = torch.sum(s)
        cumulative_energy = torch.cumsum(s, dim=0)
        if (cumulative_energy / total_energy >= energy_threshold).any():
            optimal_q = torch.searchsorted(cumulative_energy / total_energy, energy_threshold).item() + 1
            return optimal_q, u, s, vh
        current_q += step_size

    return max_q, u, s, vh


def compute_spectrum(adj_matrices, k_eigen=30):
    eigenvalues = []
    for i in range(adj_matrices.shape[0]):
        adj = adj_matrices[i]
        vals = torch.linalg.eigvalsh(adj)
        vals, _ = torch.sort(vals, descending=True)
        vals = vals[:k_eigen]
        eigenvalues.append(vals)
    return torch.stack(eigenvalues)


def wasserstein_distance_pytorch(u_values, v_values):
    u_sort, _ = torch.sort(u_values)
    v_sort, _ = torch.sort(v_values)
    return torch.sum(torch.abs(u_sort - v_sort))


def scale_singular_values(s_topk: Tensor, dataset: str) -> Tensor:
    if dataset in ['voc20', 'city_scapes']:
        return s_topk
    else:
        s_new = s_topk.clone()
        singular_min, singular_max = s_topk.min(), s_topk.max()
        scaled_range = (1.5 * singular_max) - (0.5 * singular_min)
        return (s_new - singular_min) / (singular_max - singular_min) * scaled_range + (0.5 * singular_min)


def normalize_attention_range(source_attn: Tensor, target_attn: Tensor) -> Tensor:
    source_min, source_max = source_attn.min(), source_attn.max()
    target_min, target_max = target_attn.min(), target_attn.max()
    normalized = (source_attn - source_min) / (source_max - source_min)
    return normalized * (target_max - target_min) + target_min


def apply_spectral_strategy(k, dino_key_final, scale, num_heads, k_eigen, scale_factor, energy_threshold, dataset):
    attn_weights = torch.bmm(k, k.transpose(1, 2)) * scale
    dino_attn_weights = torch.bmm(dino_key_final, dino_key_final.transpose(1, 2)) * scale

    dino_eigenvalues = compute_spectrum(dino_attn_weights.type(torch.float64), k_eigen=k_eigen)
    clip_eigenvalues = compute_spectrum(attn_weights.type(torch.float64), k_eigen=k_eigen)

    dino_eigenvalues = F.normalize(dino_eigenvalues, p=2, dim=1)
    clip_eigenvalues = F.normalize(clip_eigenvalues, p=2, dim=1)

    cost_matrix = torch.zeros(num_heads, num_heads).to(k.device)
    for i in range(num_heads):
        dino_vals = dino_eigenvalues[i].unsqueeze(0)
        for j in range(num_heads):
            clip_vals = clip_eigenvalues[j].unsqueeze(0)

            dino_vals_prob = F.normalize(dino_vals, p=1, dim=-1)
            clip_vals_prob = F.normalize(clip_vals, p=1, dim=-1)

            correlation = wasserstein_distance_pytorch(dino_vals_prob, clip_vals_prob)
            cost_matrix[i, j] = 1 - correlation

    cost_matrix_cpu = cost_matrix.detach().cpu().numpy()
    row_ind, col_ind = linear_sum_assignment(cost_matrix_cpu)

    combined_attn = torch.zeros_like(attn_weights)

    for idx in range(num_heads):
        i, j = row_ind[idx], col_ind[idx]
        w_d = 1 - cost_matrix[i, j]

        dino_key_adj = dino_attn_weights[j]
        clip_key_adj = attn_weights[i]

        _, u_topk, s_topk, v_topk = optimal_q(dino_key_adj, energy_threshold=energy_threshold, initial_q=10,
                                              step_size=5)

        s_scaled = scale_singular_values(s_topk, dataset)

        dino_sparse_approx = u_topk @ torch.diag(s_scaled) @ v_topk.T
        dino_sparse_approx.fill_diagonal_(0)

        dino_sparse_adj = normalize_attention_range(dino_sparse_approx, clip_key_adj)

        combined_attn[idx] = (w_d * scale_factor * dino_sparse_adj + clip_key_adj) / (w_d * scale_factor + 1)

    return combined_attn


def custom_attn(visual, attn_layer: nn.MultiheadAttention, x: Tensor, n_patches, dino_type, dino_attn,
                dino_n_patches, dataset, gaussian_std=5.) -> Tensor:
    """``custom_attn`` with ``attn_strategy='spectral'`` (LND)."""
    config = {'scale_factor': 10.0, 'k_eigen': 20, 'energy_threshold': 0.95}
    num_heads = attn_layer.num_heads
    num_tokens, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    q, v, k = q[:, 1:, :], v[:, 1:, :], k[:, 1:, :]

    # _get_dino_key
    if dino_type == 'dino_vitb8':
        dino_key = dino_attn[1, :, :, 1:, :].squeeze(0).permute(0, 2, 1)
    elif dino_type == 'dinov2_vitb14':
        dino_key = dino_attn[1, :, :, 5:, :].squeeze(0).permute(0, 2, 1)
    else:
        raise ValueError(f"Unsupported DINO type: {dino_type}")
    # _process_dino_key
    dino_key_reshaped = dino_key.reshape(num_heads, head_dim, dino_n_patches[0], dino_n_patches[1])
    dino_key_interpolated = F.interpolate(dino_key_reshaped, size=n_patches, mode='bilinear', align_corners=False)
    dino_key_final = dino_key_interpolated.reshape(num_heads, head_dim, n_patches[0] * n_patches[1]).permute(0, 2, 1)
    # _normalize_key_range
    k_min, k_max = k.min(), k.max()
    dino_min, dino_max = dino_key_final.min(), dino_key_final.max()
    dino_key_final = (dino_key_final - dino_min) / (dino_max - dino_min) * (k_max - k_min) + k_min
    # _get_attention_addition
    window_size = [side * 2 - 1 for side in n_patches]
    window = gaussian_window(*window_size, std=gaussian_std)
    addition = get_attention_addition(*n_patches, window).unsqueeze(0).to(visual.class_embedding.dtype).to(
        visual.class_embedding.device)

    attn_weights = apply_spectral_strategy(k, dino_key_final, scale, num_heads, config['k_eigen'],
                                           config['scale_factor'], config['energy_threshold'], dataset)
    omega = addition
    attn_weights += omega
    attn_weights = F.softmax(attn_weights, dim=-1)

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def encode_image(visual, x: Tensor, inv_image, dino_type, dino_model, dataset, return_all=False, return_cls=False):
    """``CLIP.encode_image`` -> ``VisionTransformer.forward`` (arch 'reduced')."""
    B, nc, w, h = x.shape
    n_patches = (w // visual.patch_size[0], h // visual.patch_size[1])

    if return_cls:  # official: DINO runs on inv_image first, unread before this return
        x, _ = embed(visual, x)
        x = x.permute(1, 0, 2)
        for blk in visual.transformer.resblocks:
            x = residual_block(blk, x)
        x_last = x.permute(1, 0, 2)
        x_last = layer_norm(visual.ln_post, x_last[:, 0, :])
        return x_last @ visual.proj

    small_v = min(w, h)
    inv_image = inv_image.resize((small_v, small_v))

    with torch.no_grad():
        dino_attn = dino_model(inv_image)
        dino_attn = dino_attn.half()

    if dino_type == 'dino_vitb8':
        dino_n_patches = (small_v // 8, small_v // 8)
    elif dino_type == 'dinov2_vitb14':
        dino_n_patches = (518 // 14, 518 // 14)

    x, _ = embed(visual, x)
    x = x.permute(1, 0, 2)  # NLD -> LND
    for blk in visual.transformer.resblocks[:-1]:
        x = residual_block(blk, x)
    blk = visual.transformer.resblocks[-1]

    x_last = residual_block(blk, x)
    x_last = x_last.permute(1, 0, 2)
    x_last = layer_norm(visual.ln_post, x_last[:, 0, :])
    x_last = x_last @ visual.proj

    x = custom_attn(visual, blk.attn, layer_norm(blk.ln_1, x), n_patches, dino_type, dino_attn, dino_n_patches,
                    dataset)
    x = x.permute(1, 0, 2)  # LND -> NLD
    return layer_norm(visual.ln_post, x) @ visual.proj, x_last


# --- dino/dino_attention.py, dinov2/dino_attention.py ----------------------------------------

class DinoSelfAttention:
    """``DinoSelfAttention.forward`` around the injected network."""

    def __init__(self, dino_qkv: Callable[[Tensor], Tensor], patch_size=8):
        self.dino_qkv = dino_qkv
        self.patch_size = patch_size

    def __call__(self, image):
        with torch.no_grad():
            transform = pth_transforms.Compose([
                pth_transforms.ToTensor(),
                pth_transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
            ])
            img = transform(image)
            w, h = img.shape[1] - img.shape[1] % self.patch_size, img.shape[2] - img.shape[2] % self.patch_size
            img = img[:, :w, :h].unsqueeze(0)
            return self.dino_qkv(img)


class Dinov2SelfAttention:
    """``Dinov2SelfAttention.forward`` around the injected network."""

    def __init__(self, dino_qkv: Callable[[Tensor], Tensor], image_size=(518, 518), patch_size=14):
        self.dino_qkv = dino_qkv
        self.patch_size = patch_size
        self.transform = pth_transforms.Compose([
            pth_transforms.Resize(image_size),
            pth_transforms.ToTensor(),
            pth_transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ])

    def __call__(self, img):
        img = self.transform(img)
        w, h = img.shape[1] - img.shape[1] % self.patch_size, img.shape[2] - img.shape[2] % self.patch_size
        img = img[:, :w, :h].unsqueeze(0)
        return self.dino_qkv(img)


# --- cass_segmentor.py -----------------------------------------------------------------------

class OfficialCASS:
    """``CASS_segmentor`` of the official code, from an already built CLIP, query features and DINO."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 dino_qkv: Callable[[Tensor], Tensor], dino_type: str = 'dino_vitb8', prob_thd: float = 0.0,
                 logit_scale: float = 40, slide_stride: int = 112, slide_crop: int = 224,
                 global_semantics_weight: float = 0.0, mean_vector_weight: float = 0.0, h_threshold: float = 0.0,
                 dataset: str = './configs/cfg_voc20.py', cls_net: nn.Module = None, cls_query_features: Tensor = None):
        import re
        self.net = clip_model
        self.scale_up = cls_net is not None
        self.cls_net = cls_net if self.scale_up else self.net
        self.cls_query_features = cls_query_features if self.scale_up else query_features
        self.query_idx = query_index_tensor(query_idx, query_features.device)
        self.num_queries = len(query_idx)
        self.global_semantics_weight = global_semantics_weight
        self.mean_vector_weight = mean_vector_weight
        self.h_threshold = h_threshold
        self.dataset = re.search(r'cfg_(\w+)\.py', dataset).group(1)
        self.query_features = query_features
        self.cluster_info = self.hierarchical_clustering(self.query_features)
        self.dtype = self.query_features.dtype
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.align_corners = False
        self.dino_type = dino_type
        if dino_type == 'dino_vitb8':
            self.dino_model = DinoSelfAttention(dino_qkv, patch_size=8)
        elif dino_type == 'dinov2_vitb14':
            self.dino_model = Dinov2SelfAttention(dino_qkv, patch_size=14, image_size=(518, 518))
        self.inv_normalize = transforms.Normalize(
            mean=[-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.255],
            std=[1 / 0.229, 1 / 0.224, 1 / 0.255]
        )

    def hierarchical_clustering(self, text_embeddings):
        text_embeddings = text_embeddings.detach().cpu().numpy()
        distance_matrix = sklearn_cosine_distances(text_embeddings)
        condensed_matrix = squareform(distance_matrix)
        Z = linkage(condensed_matrix, method='ward')
        clusters = fcluster(Z, t=self.h_threshold, criterion='distance') - 1
        return clusters

    def _get_cluster_indices(self, cluster_id: int) -> np.ndarray:
        return np.where(self.cluster_info == cluster_id)[0]

    def _get_most_similar_class(self, similarities: np.ndarray, indices: np.ndarray) -> int:
        similarities_in_cluster = similarities[indices]
        idx_max_similarity = np.argmax(similarities_in_cluster)
        return int(indices[idx_max_similarity])

    def _compute_topk_similarities(self, image_features, text_embedding, k: int = 2) -> Tuple[Tensor, Tensor]:
        similarities = torch.matmul(image_features, text_embedding.t()).squeeze(1)
        k = min(k, image_features.size(0))
        return torch.topk(similarities, k)

    def _compute_adjusted_embedding(self, text_embedding, mean_vector, alpha: float) -> Tensor:
        adjusted = (1 - alpha) * text_embedding + alpha * mean_vector
        return F.normalize(adjusted, dim=0)

    def hierarchical_prompt(self, image_features: Tensor, image_class_similarities: Tensor) -> Tensor:
        image_class_similarities_np = image_class_similarities.squeeze(0).detach().cpu().numpy()
        image_features = image_features.squeeze(0).to(self.query_features.device)
        text_features = self.query_features.clone().detach().to(self.query_features.device)
        adjusted_text_features = text_features.clone()

        num_clusters = len(set(self.cluster_info))
        for cluster_id in range(num_clusters):
            indices = self._get_cluster_indices(cluster_id)
            class_i = self._get_most_similar_class(image_class_similarities_np, indices)

            text_embedding_i = F.normalize(text_features[class_i].unsqueeze(0), dim=1)
            image_features_norm = F.normalize(image_features, dim=1)

            _, topk_indices = self._compute_topk_similarities(image_features_norm, text_embedding_i)
            topk_image_features = image_features[topk_indices]

            mean_vector = F.normalize(topk_image_features.mean(dim=0), dim=0)
            adjusted_embedding = self._compute_adjusted_embedding(text_embedding_i.squeeze(0), mean_vector,
                                                                  self.mean_vector_weight)
            adjusted_text_features[class_i] = adjusted_embedding
        return adjusted_text_features

    def forward_feature(self, img, whole_img):
        if type(img) == list:
            img = img[0]

        inv_image = self.inv_normalize(img.squeeze().cpu()).permute(1, 2, 0).numpy() * 255
        inv_image = Image.fromarray(inv_image.astype('uint8'))

        visual = self.net.visual
        image_features, x_last = encode_image(visual, img, inv_image, self.dino_type, self.dino_model, self.dataset,
                                              return_all=True, return_cls=False)

        image_features /= image_features.norm(dim=-1, keepdim=True)
        x_last = x_last / x_last.norm(dim=-1, keepdim=True)

        net_to_use = self.cls_net if self.scale_up else self.net
        query_features_to_use = self.cls_query_features if self.scale_up else self.query_features

        img_to_use = whole_img if whole_img is not None else img

        if whole_img is None and not self.scale_up:
            global_clip_sim = x_last @ self.query_features.T
        else:
            global_vector = encode_image(net_to_use.visual, img_to_use, inv_image, self.dino_type, self.dino_model,
                                         self.dataset, return_all=False, return_cls=True)
            global_vector = global_vector / global_vector.norm(dim=-1, keepdim=True)
            global_clip_sim = global_vector @ query_features_to_use.T

        adjusted_text_features = self.hierarchical_prompt(image_features, global_clip_sim)

        logits = image_features @ adjusted_text_features.T
        logits = logits * (1 - self.global_semantics_weight) + global_clip_sim.reshape(1, 1, logits.shape[-1]).repeat(
            1, logits.shape[1], 1) * self.global_semantics_weight

        patch_size = visual.patch_size[0]
        w, h = img[0].shape[-2] // patch_size, img[0].shape[-1] // patch_size
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)
        logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear', align_corners=self.align_corners)
        return logits

    def forward_slide(self, img, stride=112, crop_size=224):
        def window_logits(crop_img):
            if self.dataset == 'city_scapes':
                return self.forward_feature(crop_img, None)
            return self.forward_feature(crop_img, img)
        return averaged_windows(img, stride, crop_size, self.num_queries, window_logits)

    def inference(self, inputs, ori_shape):
        if self.slide_crop > 0:
            seg_logits = self.forward_slide(inputs, self.slide_stride, self.slide_crop)
        else:
            seg_logits = self.forward_feature(inputs, None)
        img_size = tuple(ori_shape)[:2]
        return nn.functional.interpolate(seg_logits, size=img_size, mode='bilinear', align_corners=self.align_corners)

    def predict(self, inputs, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = postprocess_clearclip(seg_logits, self.query_idx, self.logit_scale, self.prob_thd)
        return (seg_pred, seg_logits) if return_logits else seg_pred


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, seed: int = 42, **settings):
    """Official CASS labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W), the
    global torch generator seeded with ``seed`` first (mmengine's ``randomness``).

    Settings (official defaults): dino_qkv (required), dino_type='dino_vitb8', prob_thd=0.0,
    logit_scale=40, slide_stride=112, slide_crop=224 (0: whole image), global_semantics_weight,
    mean_vector_weight, h_threshold (0.0), dataset='./configs/cfg_voc20.py'; the scale-up's
    cls_net and cls_query_features (None: ``scale_up=False``)."""
    segmentor = OfficialCASS(clip_model, query_features, query_idx, **settings)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return segmentor.predict(img, ori_shape, return_logits=return_logits)
