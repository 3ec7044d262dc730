"""CASS (Kim et al., CVPR 2025), object-level context from DINO's attention graph, as its
official code computes it (MICV-yonsei/CASS @ 228ecdd, ``cass_segmentor.py``, ``clip/model.py``).

Per window, with ``k`` CLIP's last-block keys of the patches (heads H, N patches) and ``K`` the
last-block keys of a DINO (ViT-B/8; DINOv2-B/14-reg the alternative) on the window:

    K  = bilinear(K → CLIP's grid), min-max rescaled to k's range (one range for all heads)
    A  = k·kᵀ/√d,  D = K·Kᵀ/√d                                    (per head)
    e  = top-20 eigenvalues (float64) of each head of A and of D, L2- then L1-normalised
    C  = 1 - Σ|sort(e_D[i]) - sort(e_C[j])|;  (i ↦ j) = Hungarian assignment minimising C
    for the i-th pair (i, j):  R = USVᵀ, the randomised rank-10 SVD of D[j] (float64), S rescaled
         (except VOC20 and Cityscapes), diagonal zeroed, min-max rescaled to A[i]'s range
         W[i] = (w·10·R + A[i]) / (w·10 + 1),  w = 1 - C[i, j]
    X  = proj(ln_post(out_proj(softmax(W + G)·v)))                 (G: NACLIP's Gaussian, σ = 5)

(official: the pair's DINO head is the assignment's column j although C's columns are CLIP's
heads, and the energy search of ``optimal_q`` always stops at q = 10: its cumulative ratio ends
at 1 ≥ 0.95.) Then the text side: the class embeddings are clustered once (Ward linkage of
their cosine distances, cut at ``h_threshold``); in each cluster, the class most similar to the
image's CLIP embedding (CLS of the whole image; of the window on Cityscapes and on the whole
image path) is moved towards the mean of its 2 most similar patches
(``(1-mean_vector_weight)·t + mean_vector_weight·m``, normalised), and

    logits = (1 - g)·cos(X, T') + g·cos(CLS, T),  g = global_semantics_weight

are the window's scores, returned directly (the segmentor applies no text product).

DINO sees what the official code gives it: the window un-normalised with ImageNet's statistics
(and 0.255 for blue: official), ×255, cast to uint8, a PIL image resized (PIL's default
resampling) to the window's short side squared, ImageNet-normalised; in float32, the keys then
cast to fp16 (``.half()``) whatever CLIP's precision.

Scale-up (``presence_clip``, the official ``scale_up=True``, the project page's "Scale-up
Version"): a second CLIP (official: OpenAI ViT-L/14) gives the image-level similarity instead,
its CLS of the same input (the whole image, or the window where B/16's own CLS would be read)
against its own embeddings of the same queries (``TextSide.presence``); clusters and features
stay B/16's. The segmentor loads it (``model.method.presence_clip=dict(arch, clip_path)``).

The randomised SVD draws from the torch generator of its device, which the official run seeds
once at 42 (mmengine ``randomness``) and then consumes window after window; here each method
instance keeps that stream for itself (seeded with ``svd_seed`` at its first window), so a
run's numbers do not depend on other models sharing the process (a sweep).
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...config_check import unknown_key_error
from ...errors import SCLIPError
from ..attention import gaussian_window
from ..clip_vit import Trunk
from .base import Method, TextSide, register_method

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFICIAL_UNNORMALISE_STD = (0.229, 0.224, 0.255)  # official: 0.255 for blue (ImageNet's is 0.225)
GLOBAL_SEMANTICS = ('image', 'window')
PRESENCE_CLIP_KEYS = ('arch', 'clip_path')


def presence_clip_spec(spec: Optional[dict]) -> Optional[dict]:
    """``model.method.presence_clip`` checked: None, or ``dict(arch=..., clip_path=...)`` (the
    official scale-up: ``arch='ViT-L-14', clip_path='openai'`` or a ViT-L-14.pt file)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise SCLIPError(f'model.method.presence_clip={spec!r} must be None or '
                         "dict(arch='ViT-L-14', clip_path='openai' or a file).")
    for key in spec:
        if key not in PRESENCE_CLIP_KEYS:
            raise unknown_key_error('model.method.presence_clip', key, PRESENCE_CLIP_KEYS)
    for key in PRESENCE_CLIP_KEYS:
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise SCLIPError(f'model.method.presence_clip.{key} is not set; the official scale-up is '
                             "presence_clip=dict(arch='ViT-L-14', clip_path='openai' or /path/to/ViT-L-14.pt).")
    return dict(spec)


def dino_view(window: Tensor, family: str, dinov2_size: int) -> Tensor:
    """DINO's input (3, s, s) for one CLIP-normalised window (3, h, w), as the official
    ``forward_feature`` / ``VisionTransformer.forward`` / ``Dino*SelfAttention`` make it."""
    from PIL import Image
    from torchvision import transforms
    from torchvision.transforms.functional import normalize
    mean = [-m / s for m, s in zip(IMAGENET_MEAN, OFFICIAL_UNNORMALISE_STD)]
    std = [1 / s for s in OFFICIAL_UNNORMALISE_STD]
    pixels = normalize(window.detach().float().cpu(), mean, std).permute(1, 2, 0).numpy() * 255
    picture = Image.fromarray(pixels.astype('uint8'))
    side = min(window.shape[-2:])
    picture = picture.resize((side, side))
    if family == 'dinov2':
        picture = transforms.Resize((dinov2_size, dinov2_size))(picture)
    return normalize(transforms.functional.to_tensor(picture), list(IMAGENET_MEAN), list(IMAGENET_STD))


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """scikit-learn's ``cosine_distances(X)`` (what the official clustering calls): rows
    L2-normalised, ``1 - X·Xᵀ`` clipped to [0, 2], zero diagonal; float32 stays float32, any
    other dtype is computed in float64."""
    x = x.astype(np.float32 if x.dtype == np.float32 else np.float64, copy=True)
    norms = np.sqrt(np.einsum('ij,ij->i', x, x))
    norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0
    x /= norms[:, np.newaxis]
    distances = x @ x.T
    distances *= -1
    distances += 1
    np.clip(distances, 0, 2, out=distances)
    np.fill_diagonal(distances, 0.0)
    return distances


def class_clusters(embeddings: Tensor, threshold: float) -> np.ndarray:
    """Cluster id (0-based) of each class embedding: Ward linkage of the condensed cosine
    distances, flat clusters at ``threshold`` (scipy, imported here: not at ``import sclip``)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    if embeddings.shape[0] < 2:
        return np.zeros(embeddings.shape[0], dtype=np.int32)
    tree = linkage(squareform(cosine_distances(embeddings.detach().cpu().numpy())), method='ward')
    return fcluster(tree, t=threshold, criterion='distance') - 1


def spectrum(adjacency: Tensor, count: int) -> Tensor:
    """The ``count`` largest eigenvalues of each (symmetric) head, float64, descending."""
    values = torch.stack([torch.linalg.eigvalsh(head) for head in adjacency.to(torch.float64)])
    return torch.sort(values, dim=-1, descending=True)[0][:, :count]


def spectral_costs(clip_adjacency: Tensor, dino_adjacency: Tensor, count: int) -> Tensor:
    """(H, H) float32: ``1 - W1`` between the normalised spectra, rows DINO's heads, columns CLIP's."""
    dino = F.normalize(F.normalize(spectrum(dino_adjacency, count), p=2, dim=1), p=1, dim=-1)
    clip = F.normalize(F.normalize(spectrum(clip_adjacency, count), p=2, dim=1), p=1, dim=-1)
    dino, clip = torch.sort(dino, dim=-1)[0], torch.sort(clip, dim=-1)[0]
    distance = (dino[:, None, :] - clip[None, :, :]).abs().sum(dim=-1)
    return (1 - distance).to(torch.float32)


def rescaled(source: Tensor, target: Tensor) -> Tensor:
    """``source`` min-max rescaled to ``target``'s range (one range for the whole tensor)."""
    return (source - source.min()) / (source.max() - source.min()) * (target.max() - target.min()) + target.min()


def stretched(singular: Tensor) -> Tensor:
    """The official per-benchmark singular-value scaling: [min, max] -> [0.5 min, 1.5 max]."""
    low, high = singular.min(), singular.max()
    return (singular.clone() - low) / (high - low) * ((1.5 * high) - (0.5 * low)) + (0.5 * low)


def cls_embedding(vit, images: Tensor) -> Tensor:
    """CLIP's own image embedding (B, D) of ``images``: every block as CLIP runs it, the CLS
    projected (the positional embedding resized to the input's grid as the official code does)."""
    x, _ = vit.embed(images)
    for index in range(1, vit.depth + 1):
        x = vit.standard_block(index, x)
    return vit.project(x[:, 0])


@register_method('cass')
class CASS(Method):
    """CASS; the foundation model is ``model.vfm`` (``dino_vitb8``, or ``dinov2_vitb14_reg``).

    Args:
        global_semantics_weight: g, the weight of the image-level CLIP similarity in the logits.
        mean_vector_weight: how far each cluster's chosen class embedding moves towards its patches.
        h_threshold: the Ward-linkage distance at which the class embeddings are cut into clusters.
        scale_singular_values: stretch DINO's singular values (official: every benchmark but
            VOC20 and Cityscapes, which the official segmentor reads from the config's file name).
        global_semantics: whose CLS gives the image-level similarity while sliding: ``'image'``
            (the whole image through CLIP; official) or ``'window'`` (official on Cityscapes,
            again from the file name). The whole-image path (``slide_crop=0``) uses its own CLS.
        sigma: std (in patches) of the Gaussian added to the attention (official 5).
        scale_factor: weight of DINO's graph against CLIP's (official 10).
        k_eigen: eigenvalues compared per head (official 20).
        rank: the randomised SVD's q (official: ``optimal_q`` starts, and always stops, at 10).
        top_patches: patches averaged into a chosen class embedding (official 2).
        svd_seed: seed of the randomised SVD's stream (official ``randomness.seed`` 42).
        presence_clip: None (official default), or the scale-up's second CLIP for the image-level
            similarity, ``dict(arch='ViT-L-14', clip_path='openai')`` (official ``scale_up=True``).
    """
    needs_vfm = True
    needs_text = True
    normalizes = True
    gives_scores = True        # forward returns the window's class scores (B, gh, gw, Q)
    official_vfm_fp16 = False  # official: DINO runs in float32, its keys are cast to fp16

    def __init__(self, global_semantics_weight: float = 0.0, mean_vector_weight: float = 0.0,
                 h_threshold: float = 0.0, scale_singular_values: bool = True, global_semantics: str = 'image',
                 sigma: float = 5.0, scale_factor: float = 10.0, k_eigen: int = 20, rank: int = 10,
                 top_patches: int = 2, svd_seed: int = 42, presence_clip: Optional[dict] = None):
        super().__init__()
        if global_semantics not in GLOBAL_SEMANTICS:
            raise SCLIPError(f'model.method.global_semantics={global_semantics!r} must be '
                             f"{' or '.join(map(repr, GLOBAL_SEMANTICS))}.")
        self.global_semantics_weight = float(global_semantics_weight)
        self.mean_vector_weight = float(mean_vector_weight)
        self.h_threshold = float(h_threshold)
        self.scale_singular_values = bool(scale_singular_values)
        self.global_semantics = global_semantics
        self.sigma, self.scale_factor = float(sigma), float(scale_factor)
        self.k_eigen, self.rank, self.top_patches = int(k_eigen), int(rank), int(top_patches)
        self.svd_seed = int(svd_seed)
        self.presence_clip = presence_clip_spec(presence_clip)
        self.presence_vit = None  # the scale-up's vision tower (CLIPViT), attached by the segmentor
        self.vfm = None
        self.crop = None
        self._rng_states: Dict[str, Tensor] = {}
        self._clusters: Optional[Tuple[tuple, np.ndarray]] = None

    # --- DINO's side ----------------------------------------------------------------------
    def dino_keys(self, trunk: Trunk) -> Tuple[Tensor, Tuple[int, int]]:
        """DINO's last-block patch keys of every window (B, heads, n, d) in fp16, and their grid;
        computed once per chunk of windows (shared by the models reading the same trunk)."""
        return trunk.memo(('cass-dino-keys', id(self.vfm)), lambda: self._dino_keys(trunk.images))

    def _dino_keys(self, windows: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        family = self.vfm.spec.family
        if family not in ('dino', 'dinov2'):
            raise SCLIPError(f'model.vfm.type={self.vfm.spec.name!r}: CASS reads the attention keys of a DINO or '
                             "DINOv2 ViT; use 'dino_vitb8' (official) or 'dinov2_vitb14_reg'.")
        views = torch.stack([dino_view(window, family, self.vfm.spec.image_size) for window in windows])
        patch = self.vfm.patch_size
        views = views[..., :views.shape[-2] - views.shape[-2] % patch, :views.shape[-1] - views.shape[-1] % patch]
        parameter = next(self.vfm.parameters())
        keys, grid = self.vfm.last_block_keys(views.to(device=parameter.device, dtype=parameter.dtype))
        return keys.half(), grid

    # --- the randomised SVD's own stream --------------------------------------------------
    def low_rank(self, matrices: List[Tensor]) -> List[Tuple[Tensor, Tensor, Tensor]]:
        """``torch.svd_lowrank(m.double(), q=rank)`` of each matrix in order, drawing from this
        method's stream (the device generator's, seeded with ``svd_seed`` at the first call)."""
        device = matrices[0].device
        cuda = device.type == 'cuda'
        index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
        with torch.random.fork_rng(devices=[index] if cuda else [], device_type='cuda'):
            state = self._rng_states.get(str(device))
            if state is None:
                (torch.cuda.manual_seed if cuda else torch.manual_seed)(self.svd_seed)
            elif cuda:
                torch.cuda.set_rng_state(state, index)
            else:
                torch.set_rng_state(state)
            out = [torch.svd_lowrank(matrix.type(torch.float64), q=self.rank) for matrix in matrices]
            self._rng_states[str(device)] = torch.cuda.get_rng_state(index) if cuda else torch.get_rng_state()
        return out

    # --- the attention --------------------------------------------------------------------
    def spectral_attention(self, k: Tensor, dino_keys: Tensor, grid: Tuple[int, int],
                           dino_grid: Tuple[int, int]) -> Tensor:
        """One window: CLIP's patch keys (H, N, d), DINO's (H', n, d') -> attention (H, N, N)."""
        heads, tokens, dim = k.shape
        if dino_keys.shape[0] * dino_keys.shape[2] != heads * dim:
            raise SCLIPError(f'model.vfm: CASS lays DINO\'s keys ({dino_keys.shape[0]}×{dino_keys.shape[2]} '
                             f'channels) out as CLIP\'s heads ({heads}×{dim}); pair models of the same width '
                             '(CLIP ViT-B/16 with DINO ViT-B/8 or DINOv2 ViT-B/14).')
        if tokens < self.rank:
            raise SCLIPError(f'a window of {grid[0]}×{grid[1]} patches has fewer than model.method.rank='
                             f'{self.rank}; the official code fails there too (use larger windows or images).')
        scale = dim ** -0.5
        dino = dino_keys.permute(0, 2, 1).reshape(heads, dim, *dino_grid)
        dino = F.interpolate(dino, size=grid, mode='bilinear', align_corners=False)
        dino = rescaled(dino.reshape(heads, dim, tokens).permute(0, 2, 1), k)
        clip_graph = torch.bmm(k, k.transpose(1, 2)) * scale
        dino_graph = torch.bmm(dino, dino.transpose(1, 2)) * scale
        costs = spectral_costs(clip_graph, dino_graph, self.k_eigen)
        from scipy.optimize import linear_sum_assignment
        rows, cols = linear_sum_assignment(costs.detach().cpu().numpy())
        factors = self.low_rank([dino_graph[j] for j in cols])
        combined = torch.zeros_like(clip_graph)
        for index, (i, j) in enumerate(zip(rows, cols)):
            weight = 1 - costs[i, j]
            u, s, v = factors[index]
            if self.scale_singular_values:
                s = stretched(s)
            approximation = u @ torch.diag(s) @ v.T
            approximation.fill_diagonal_(0)
            graph = rescaled(approximation, clip_graph[i])
            combined[index] = (weight * self.scale_factor * graph + clip_graph[i]) / (weight * self.scale_factor + 1)
        combined += gaussian_window(grid, self.sigma, torch.float32, k.device)[1:, 1:]
        return F.softmax(combined, dim=-1)

    # --- the text side --------------------------------------------------------------------
    def clusters(self, embeddings: Tensor) -> np.ndarray:
        key = (id(embeddings), embeddings._version, tuple(embeddings.shape), self.h_threshold)
        if self._clusters is None or self._clusters[0] != key:
            self._clusters = (key, class_clusters(embeddings, self.h_threshold))
        return self._clusters[1]

    def adjusted_text(self, features: Tensor, image_similarity: Tensor, text: Tensor) -> Tensor:
        """One window: each cluster's class most similar to the image moved towards the mean of
        its ``top_patches`` most similar patches. features (N, D) unit, image_similarity (Q,)."""
        clusters = self.clusters(text)
        similarity = image_similarity.detach().cpu().numpy()
        chosen = []
        for cluster in range(len(set(clusters.tolist()))):
            members = np.where(clusters == cluster)[0]
            chosen.append(int(members[np.argmax(similarity[members])]))
        chosen = torch.tensor(chosen, device=text.device)
        classes = F.normalize(text[chosen], dim=1)
        nearest = torch.topk(F.normalize(features, dim=1) @ classes.T, min(self.top_patches, features.shape[0]),
                             dim=0)[1]
        means = F.normalize(features[nearest].mean(dim=0), dim=-1)
        alpha = self.mean_vector_weight
        adjusted = text.clone()
        adjusted[chosen] = F.normalize((1 - alpha) * classes + alpha * means, dim=-1)
        return adjusted

    def image_embedding(self, trunk: Trunk) -> Tensor:
        """The unit CLIP embedding (B, D) that the image-level similarity reads: the CLS of each
        window's own forward, or of its whole image (``trunk.sources``) while sliding; with the
        scale-up, the second CLIP's CLS of the same input (official: whole image or window)."""
        own_window = self.global_semantics == 'window' or trunk.sources is None
        vit = trunk.vit if self.presence_vit is None else self.presence_vit
        vit.fused = trunk.vit.fused
        if own_window and vit is trunk.vit:  # the window's own forward, already run
            cls = vit.project(trunk.tokens(vit.depth)[:, 0])
        elif own_window:
            cls = trunk.memo(('cass-cls', id(vit)), lambda: cls_embedding(vit, trunk.images))
        else:
            cls = torch.stack([trunk.memo(('cass-image-cls', id(vit), id(source)),
                                          lambda source=source: cls_embedding(vit, source[None])[0])
                               for source in trunk.sources])
        return cls / cls.norm(dim=-1, keepdim=True)

    def class_similarity(self, trunk: Trunk, text: TextSide, dtype: torch.dtype) -> Tensor:
        """(B, Q): the image-level similarity of each window to each query (B/16's embeddings,
        or the scale-up CLIP's own, ``text.presence``)."""
        if self.presence_vit is not None:
            if text.presence is None:
                raise SCLIPError('model.method.presence_clip: the segmentor did not encode the queries with '
                                 'the second CLIP; run CASS through the segmentor.')
            embeddings = text.presence
        else:
            embeddings = text.embeddings
        return self.image_embedding(trunk).to(dtype) @ embeddings.to(dtype).T

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        if text is None:
            raise SCLIPError('CASS needs the class embeddings (text side); run it through the segmentor.')
        vit, depth, grid = trunk.vit, trunk.vit.depth, trunk.grid
        _, k, v = trunk.qkv(depth, trunk.tokens(depth - 1))
        k, v = k[:, :, 1:], v[:, :, 1:]
        dino_keys, dino_grid = self.dino_keys(trunk)
        attention = torch.stack([self.spectral_attention(k[b], dino_keys[b], grid, dino_grid)
                                 for b in range(k.shape[0])])
        attention = attention.to(v.dtype)
        features = vit.project(vit.attention_output(depth, attention @ v))
        features = features / features.norm(dim=-1, keepdim=True)
        embeddings = text.embeddings.to(features.dtype)
        image_similarity = self.class_similarity(trunk, text, features.dtype)
        g = self.global_semantics_weight
        scores = []
        for b in range(features.shape[0]):
            adjusted = self.adjusted_text(features[b], image_similarity[b], embeddings)
            logits = features[b] @ adjusted.T
            scores.append(logits * (1 - g) + image_similarity[b][None].repeat(logits.shape[0], 1) * g)
        scores = torch.stack(scores)
        if torch.isnan(scores).any():
            logging.getLogger('sclip').warning('CASS: a window gave NaN scores (a flat DINO key range), '
                                               'as in the official code')
        return scores.reshape(scores.shape[0], grid[0], grid[1], -1)
