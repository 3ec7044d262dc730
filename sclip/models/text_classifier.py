"""Text embeddings of every class name, averaged over prompt templates, cached on disk.

Why: the classifier is the same for every run of a (model, weights, names, templates)
combination, and encoding tens of thousands of prompts is the slowest part of starting a
run. We encode each prompt only up to the longest prompt's end-of-text token (the text
transformer is causal, so the features are identical), in batches, and store the result
under a key that hashes all four inputs, so a changed input never reuses a stale file.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

CACHE_VERSION = 3  # 3: entries record their key


def openai_imagenet_templates() -> List[str]:
    """open_clip's 80 OpenAI ImageNet templates as format strings with one ``{}``."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
    return [template('{}') for template in OPENAI_IMAGENET_TEMPLATES]


TEMPLATE_SETS = {'openai_imagenet': openai_imagenet_templates, 'none': lambda: ['{}']}


def resolve_templates(templates) -> List[str]:
    """A template-set name, or a list of format strings each holding one ``{}``."""
    from ..errors import SCLIPError
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise SCLIPError(f'model.templates={templates!r} is unknown; use one of '
                             f'{", ".join(TEMPLATE_SETS)} or a list of strings with "{{}}".')
        return TEMPLATE_SETS[templates]()
    templates = list(templates)
    bad = [t for t in templates if t.count('{}') != 1]
    if not templates or bad:
        raise SCLIPError(f'model.templates: each template needs exactly one "{{}}" (got {bad[:1] or "none"}).')
    return templates


def weights_fingerprint(model: torch.nn.Module) -> str:
    """Hash of the text tower's parameters, so a cache never outlives the weights it came from
    (remembered on the tower's transformer, which models of one sweep group share)."""
    holder = getattr(model, 'transformer', None)
    dtype = next(model.parameters()).dtype
    cached = getattr(holder, '_sclip_text_fingerprint', None)
    if cached is not None and cached[0] == dtype:
        return cached[1]
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(text_tower_state(model).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    if holder is not None:
        holder._sclip_text_fingerprint = (dtype, digest.hexdigest())
    return digest.hexdigest()


def text_tower_state(model: torch.nn.Module) -> dict:
    return {name: value for name, value in model.state_dict().items() if not name.startswith('visual.')}


def cache_key(model_name: str, fingerprint: str, names: Sequence[str], templates: Sequence[str]) -> str:
    payload = json.dumps(dict(version=CACHE_VERSION, model=model_name, weights=fingerprint,
                              names=list(names), templates=list(templates)), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def default_cache_dir() -> str:
    return os.environ.get('SCLIP_CACHE_DIR', os.path.join(os.path.expanduser('~'), '.cache', 'sclip'))


@torch.no_grad()
def encode_prompts(model: torch.nn.Module, tokens: Tensor, truncate: bool = True) -> Tensor:
    """Text features (P, D) of tokenised prompts (P, L).

    With ``truncate`` the sequence is cut after the longest prompt's end-of-text token
    (the highest token id, as CLIP pools there); positions beyond it cannot influence
    earlier ones under the causal mask, so the features equal the full-length ones.
    """
    standard = (hasattr(model, 'token_embedding') and getattr(model, 'text_pool_type', 'argmax') == 'argmax'
                and getattr(model, 'attn_mask', None) is not None)
    if not (truncate and standard):
        return model.encode_text(tokens)
    eot = tokens.argmax(dim=-1)
    length = int(eot.max()) + 1
    x = model.token_embedding(tokens[:, :length])
    x = x + model.positional_embedding[:length].to(x.dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot]
    return x @ model.text_projection if not isinstance(model.text_projection, torch.nn.Linear) \
        else model.text_projection(x)


@torch.no_grad()
def build_class_embeddings(model: torch.nn.Module, tokenizer: Callable, names: Sequence[str],
                           templates: Sequence[str], device, batch_size: int = 256,
                           truncate: bool = True, official: bool = False) -> Tensor:
    """(len(names), D): per name, the normalised mean of its normalised prompt features.

    ``official``: the official codes' loop, one name at a time at full context length, in the
    model's dtype (fp16 under ``precision='official'``): ``f /= |f|; m = mean(f); m /= |m|``.
    """
    if official:
        rows = []
        for name in names:
            tokens = tokenizer([template.format(name) for template in templates]).to(device)
            features = model.encode_text(tokens)
            features = features / features.norm(dim=-1, keepdim=True)
            mean = features.mean(dim=0)
            rows.append(mean / mean.norm())
        return torch.stack(rows)
    prompts = [template.format(name) for name in names for template in templates]
    features = []
    for start in range(0, len(prompts), batch_size):
        tokens = tokenizer(prompts[start:start + batch_size]).to(device)
        features.append(F.normalize(encode_prompts(model, tokens, truncate).float(), dim=-1))
    per_prompt = torch.cat(features).view(len(names), len(templates), -1)
    return F.normalize(per_prompt.mean(dim=1), dim=-1)


def tensor_checksum(tensor: Tensor) -> str:
    """sha256 of a tensor's bytes (CPU, contiguous)."""
    return hashlib.sha256(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


def embedding_dim(model: torch.nn.Module) -> Optional[int]:
    """The size of the model's text embeddings (None when the text head is not a known kind)."""
    projection = getattr(model, 'text_projection', None)
    if isinstance(projection, torch.nn.Linear):
        return projection.out_features
    if isinstance(projection, torch.Tensor) and projection.ndim == 2:
        return int(projection.shape[1])
    return None


def verify_cached(entry, num_names: int, dim: Optional[int] = None, key: Optional[str] = None,
                  path: str = 'text cache entry') -> Optional[Tensor]:
    """The embeddings of a cache entry if it is intact, else None (with the reason logged).

    Intact: a dict with the embeddings, their shape, dtype and checksum, all agreeing; written
    under ``key`` (an entry copied over another key's file is refused); one row per name, of
    ``dim`` values when given; every value finite; every row of unit norm (a cache of zeros or
    NaNs is never used).
    """
    logger = logging.getLogger('sclip')
    if not isinstance(entry, dict) or not isinstance(entry.get('embeddings'), torch.Tensor):
        logger.warning('%s rejected (not a cache entry); rebuilding it', path)
        return None
    embeddings = entry['embeddings']
    problems = []
    if key is not None and entry.get('key') != key:
        problems.append('written for other names, templates or weights')
    if (list(embeddings.shape) != list(entry.get('shape', [])) or embeddings.ndim != 2
            or embeddings.shape[0] != num_names or (dim is not None and embeddings.shape[1] != dim)):
        problems.append(f'shape {tuple(embeddings.shape)}, expected ({num_names}, {dim or "D"})')
    if str(embeddings.dtype) != entry.get('dtype'):
        problems.append(f'dtype {embeddings.dtype}')
    if tensor_checksum(embeddings) != entry.get('sha256'):
        problems.append('checksum mismatch')
    if not torch.isfinite(embeddings).all():
        problems.append('non-finite values')
    elif embeddings.ndim == 2 and not torch.allclose(embeddings.float().norm(dim=-1),
                                                     torch.ones(embeddings.shape[0]), atol=1e-2):
        problems.append('rows not of unit norm')
    if problems:
        logger.warning('%s rejected (%s); rebuilding it', path, ', '.join(problems))
        return None
    return embeddings


def write_cache(path: str, embeddings: Tensor, key: Optional[str] = None) -> None:
    """Write a cache entry atomically; on any failure warn, remove the temporary file, go on.

    Serialised in memory first, so a failed write is the file system's OSError (e.g. "No
    space left on device"), not torch's "basic_ios::clear"."""
    from ..files import write_bytes_atomic
    cpu = embeddings.detach().cpu().contiguous()
    buffer = io.BytesIO()
    torch.save(dict(embeddings=cpu, shape=list(cpu.shape), dtype=str(cpu.dtype), key=key,
                    sha256=tensor_checksum(cpu), version=CACHE_VERSION), buffer)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as error:
        logging.getLogger('sclip').warning('could not write the text cache %s (%s); continuing without it',
                                           path, error.strerror or error)


def _cached(key: str, num_rows: int, dim: Optional[int], cache_dir: Optional[str], build: Callable[[], Tensor],
            device) -> Tensor:
    """``build()`` through the on-disk cache entry ``key`` (``cache_dir=None`` disables it)."""
    if cache_dir is None:
        return build()
    path = os.path.join(os.path.expanduser(cache_dir), 'text', f'{key}.pt')
    if os.path.isfile(path):
        try:
            cached = verify_cached(torch.load(path, map_location='cpu', weights_only=True), num_rows,
                                   dim, key=key, path=path)
        except Exception:  # noqa: BLE001 - an unreadable cache file is rebuilt, never trusted
            logging.getLogger('sclip').warning('text cache %s is unreadable; rebuilding it', path)
            cached = None
        if cached is not None:
            return cached.to(device)
    embeddings = build()
    write_cache(path, embeddings, key)
    return embeddings


def load_or_build(model: torch.nn.Module, tokenizer: Callable, names: Sequence[str],
                  templates: Sequence[str], device, model_name: str, cache_dir: Optional[str],
                  batch_size: int = 256, official: bool = False) -> Tensor:
    """``build_class_embeddings`` through an on-disk cache (``cache_dir=None`` disables it)."""
    def build():
        from ..progress import status
        status(f'encoding {len(names)} class names x {len(templates)} templates with CLIP\'s text tower'
               f'{" (cached for the next runs)" if cache_dir is not None else ""}')
        return build_class_embeddings(model, tokenizer, names, templates, device, batch_size, official=official)
    if cache_dir is None:
        return build()
    key = cache_key(model_name + (':official-fp16' if official else ''), weights_fingerprint(model),
                    names, templates)
    return _cached(key, len(names), embedding_dim(model), cache_dir, build, device)


@torch.no_grad()
def build_prompt_set_embeddings(model: torch.nn.Module, tokenizer: Callable, prompt_sets: Sequence[Sequence[str]],
                                device, batch_size: int = 256, truncate: bool = True,
                                official: bool = False) -> Tensor:
    """(len(prompt_sets), D): per set of prompts (of any sizes), the normalised mean of its
    normalised prompt features; ``official`` as in ``build_class_embeddings``."""
    if official:
        rows = []
        for prompts in prompt_sets:
            features = model.encode_text(tokenizer(list(prompts)).to(device))
            features = features / features.norm(dim=-1, keepdim=True)
            mean = features.mean(dim=0)
            rows.append(mean / mean.norm())
        return torch.stack(rows)
    flat = [prompt for prompts in prompt_sets for prompt in prompts]
    features = []
    for start in range(0, len(flat), batch_size):
        tokens = tokenizer(flat[start:start + batch_size]).to(device)
        features.append(F.normalize(encode_prompts(model, tokens, truncate).float(), dim=-1))
    per_prompt = torch.cat(features).split([len(prompts) for prompts in prompt_sets])
    return F.normalize(torch.stack([chunk.mean(dim=0) for chunk in per_prompt]), dim=-1)


def load_or_build_sets(model: torch.nn.Module, tokenizer: Callable, prompt_sets: Sequence[Sequence[str]],
                       device, model_name: str, cache_dir: Optional[str], batch_size: int = 256,
                       official: bool = False) -> Tensor:
    """``build_prompt_set_embeddings`` through the on-disk cache, keyed by every prompt."""
    def build():
        return build_prompt_set_embeddings(model, tokenizer, prompt_sets, device, batch_size, official=official)
    if cache_dir is None:
        return build()
    payload = json.dumps(dict(version=CACHE_VERSION, model=model_name + (':official-fp16' if official else ''),
                              weights=weights_fingerprint(model), sets=[list(p) for p in prompt_sets]))
    key = 'sets-' + hashlib.sha256(payload.encode()).hexdigest()[:32]
    return _cached(key, len(prompt_sets), embedding_dim(model), cache_dir, build, device)


class TextClassifier:
    """The text side of a segmentor: class names in templates, plus ``model.text``'s per-class
    descriptions and per-class template sets (class_texts.py), encoded once and cached.

    ``embeddings`` (Q, D) classify the patches: each name's template mean, mixed with its
    description's (``(1 - w)·name + w·description``, not re-normalised, as ITACLIP) when a
    description weight is set. ``descriptions`` (Q, D): the descriptions alone (a name without
    any keeps its name embedding). ``experts`` (Q, Q, D): row ``e`` classifies every name with
    name ``e``'s ranked templates (FLOSS).
    """

    def __init__(self, names, templates, text: Optional[dict] = None):
        from .class_texts import load_descriptions, load_template_ranking, parse_text_spec
        self.names = names
        self.templates = resolve_templates(templates)
        spec = parse_text_spec(text)
        self.descriptions = load_descriptions(spec['descriptions'], names) if 'descriptions' in spec else None
        self.description_templates = None
        if self.descriptions is not None:
            try:
                self.description_templates = resolve_templates(self.descriptions.templates)
            except Exception as error:  # noqa: BLE001 - reworded with its key
                raise type(error)(str(error).replace('model.templates', 'model.text.descriptions.templates')) from None
        self.ranking = (load_template_ranking(spec['template_ranking'], names, len(openai_imagenet_templates()))
                        if 'template_ranking' in spec else None)

    def description_prompt_sets(self) -> List[List[str]]:
        """Per query that has descriptions, every description in every description template."""
        return [[template.format(text) for text in texts for template in self.description_templates]
                for texts in self.descriptions.texts if texts is not None]

    def build(self, encode_names: Callable[[Sequence[str]], Tensor],
              encode_sets: Callable[[Sequence[Sequence[str]]], Tensor]) -> dict:
        """``embeddings``, ``descriptions`` and ``experts`` (the last two None when not configured).
        ``encode_names(templates)``: the (Q, D) template means of the names."""
        names = encode_names(self.templates)
        out = dict(embeddings=names, descriptions=None, experts=None)
        if self.descriptions is not None:
            rows = [index for index, texts in enumerate(self.descriptions.texts) if texts is not None]
            described = encode_sets(self.description_prompt_sets()).to(names.dtype)
            alone = names.clone()
            alone[rows] = described
            out['descriptions'] = alone
            weight = self.descriptions.weight
            if weight is not None:
                mixed = names.clone()
                mixed[rows] = (1 - weight) * names[rows] + weight * described
                out['embeddings'] = mixed
        if self.ranking is not None:
            imagenet = openai_imagenet_templates()
            by_set: dict = {}
            experts = []
            for ids in self.ranking.template_ids:
                if tuple(ids) not in by_set:
                    by_set[tuple(ids)] = encode_names([imagenet[i] for i in ids])
                experts.append(by_set[tuple(ids)])
            out['experts'] = torch.stack(experts).to(names.dtype)
        return out
