"""Loading CLIP weights: OpenAI state dicts and TorchScript, open_clip checkpoints, bad files."""
import json
import os
import pickle

import pytest
import torch

from helpers import tiny_clip, write_openai_checkpoint
from sclip.errors import SCLIPError
from sclip.models import clip_loader
from sclip.models.clip_loader import load_clip


def test_openai_state_dict_infers_architecture(tiny_checkpoint):
    model = load_clip(tiny_checkpoint)
    reference = tiny_clip()
    assert model.visual.patch_size == (16, 16) and len(model.visual.transformer.resblocks) == 3
    assert type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == 'QuickGELU'
    ref_state = reference.state_dict()
    for name, value in model.state_dict().items():  # float16 round trip of the same weights
        assert value.dtype == torch.float32
        assert torch.allclose(value, ref_state[name].half().float()), name


def test_torchscript_archive_loads(tmp_path, tiny_checkpoint):
    model = load_clip(tiny_checkpoint)
    traced = torch.jit.trace_module(model, dict(encode_image=(torch.ones(1, 3, 224, 224),)), check_trace=False)
    path = str(tmp_path / 'traced.pt')
    torch.jit.save(traced, path)
    loaded = load_clip(path)
    for name, value in model.state_dict().items():
        assert torch.allclose(loaded.state_dict()[name], value), name


def test_open_clip_checkpoint_with_arch(tmp_path):
    import open_clip
    config_dir = tmp_path / 'cfg'
    config_dir.mkdir()
    (config_dir / 'tiny-test-vit.json').write_text(json.dumps(dict(
        embed_dim=32, vision_cfg=dict(image_size=224, layers=2, width=128, patch_size=16),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))))
    open_clip.add_model_config(str(config_dir))
    model = open_clip.create_model('tiny-test-vit')
    path = str(tmp_path / 'openclip.pt')
    torch.save({'state_dict': {'module.' + k: v for k, v in model.state_dict().items()}}, path)
    loaded = load_clip(path, arch='tiny-test-vit')
    assert type(loaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == 'GELU'
    assert torch.equal(loaded.visual.conv1.weight, model.visual.conv1.weight)
    with pytest.raises(SCLIPError, match='set model.arch'):
        load_clip(path, arch=None)


def test_not_a_clip_checkpoint(tmp_path):
    path = str(tmp_path / 'resnet.pt')
    torch.save({'conv.weight': torch.zeros(1)}, path)
    with pytest.raises(SCLIPError, match=r"resnet.pt' is not a CLIP ViT checkpoint"):
        load_clip(path)


def test_corrupt_and_unsafe_files_are_refused(tmp_path):
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'not a checkpoint at all')
    with pytest.raises(SCLIPError, match='could not be read as a CLIP checkpoint'):
        load_clip(str(corrupt))

    class Payload:
        def __reduce__(self):
            return (os.system, ('echo pwned',))
    unsafe = tmp_path / 'unsafe.pt'
    with open(unsafe, 'wb') as f:
        pickle.dump({'x': Payload()}, f)
    with pytest.raises(SCLIPError, match='could not be read'):
        load_clip(str(unsafe))


def test_missing_file_and_unknown_tag():
    with pytest.raises(SCLIPError, match='file not found'):
        load_clip('/nonexistent/ViT-B-16.pt')
    with pytest.raises(SCLIPError, match="'nope' is neither a local file nor an open_clip tag"):
        load_clip('nope', arch='ViT-B-16')


def test_download_failure_says_how_to_get_weights(monkeypatch):
    import open_clip

    def offline(*args, **kwargs):
        raise RuntimeError('Failed to download weights for tag openai: connection refused by the server')
    monkeypatch.setattr(open_clip, 'create_model', offline)
    monkeypatch.setattr(clip_loader, 'network_reachable', lambda *a, **k: True)
    with pytest.raises(SCLIPError) as error:
        load_clip('openai', arch='ViT-B-16')
    message = str(error.value)
    assert 'could not be downloaded' in message and 'model.clip_path=/path/to/ViT-B-16.pt' in message
    assert 'connection refused by the server' in message  # the reason whole, not cut mid-word


def test_offline_without_cached_weights_fails_at_once(monkeypatch):
    """No network and nothing cached: one line, no download attempt (no retries)."""
    import open_clip
    attempts = []
    monkeypatch.setattr(open_clip, 'create_model', lambda *a, **k: attempts.append(a))
    monkeypatch.setattr(clip_loader, 'cached_weights', lambda *a, **k: None)
    monkeypatch.setattr(clip_loader, 'network_reachable', lambda *a, **k: False)
    with pytest.raises(SCLIPError, match='not cached and there is no network.*model.clip_path='):
        load_clip('openai', arch='ViT-B-16')
    assert not attempts  # refused before any download attempt (open_clip's retries)
    with pytest.raises(SCLIPError, match='ViT-L-14.pt'):  # the file of the architecture asked for
        load_clip('openai', arch='ViT-L-14')
    with pytest.raises(SCLIPError, match='the ViT-H-14 laion2b_s32b_b79k checkpoint') as error:
        load_clip('laion2b_s32b_b79k', arch='ViT-H-14')
    assert 'ViT-B-16' not in str(error.value)


def test_cached_tag_weights_load_from_the_cache_file(monkeypatch, tmp_path):
    """A cached download is loaded from its file, without asking the hub again."""
    import open_clip
    seen = {}

    def fake_create(arch, pretrained=None, **kwargs):
        seen.update(pretrained=pretrained)
        return tiny_clip()
    monkeypatch.setattr(open_clip, 'create_model', fake_create)
    monkeypatch.setattr(clip_loader, 'cached_weights', lambda *a, **k: str(tmp_path / 'open_clip_model.safetensors'))
    monkeypatch.setattr(clip_loader, 'network_reachable', lambda *a, **k: False)
    load_clip('openai', arch='ViT-B-16')
    assert seen['pretrained'].endswith('open_clip_model.safetensors')


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    """A ViT-B/32-shaped OpenAI file under model.arch='ViT-B-16' names both architectures."""
    import open_clip
    model = open_clip.create_model('ViT-B-32-quickgelu', pretrained=None)
    path = str(tmp_path / 'b32.pt')
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    with pytest.raises(SCLIPError, match=r"is a ViT-B-32 \(patch 32.*model.arch='ViT-B-16' is patch 16"):
        load_clip(path, arch='ViT-B-16')
    assert load_clip(path, arch='ViT-B-32').visual.patch_size == (32, 32)
    assert load_clip(path, arch=None).visual.patch_size == (32, 32)


def test_openai_tag_forces_quick_gelu(monkeypatch):
    import open_clip
    seen = {}

    def fake_create(arch, pretrained=None, **kwargs):
        seen.update(kwargs, arch=arch, pretrained=pretrained)
        return tiny_clip()
    monkeypatch.setattr(open_clip, 'create_model', fake_create)
    monkeypatch.setattr(clip_loader, 'cached_weights', lambda *a, **k: None)
    monkeypatch.setattr(clip_loader, 'network_reachable', lambda *a, **k: True)
    load_clip('openai', arch='ViT-B-16')
    assert seen['force_quick_gelu'] is True and seen['pretrained'] == 'openai'
