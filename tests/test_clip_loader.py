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
        raise RuntimeError('Failed to download weights for tag openai: connection refused')
    monkeypatch.setattr(open_clip, 'create_model', offline)
    with pytest.raises(SCLIPError, match='could not be downloaded.*model.clip_path=/path/to/ViT-B-16.pt'):
        load_clip('openai', arch='ViT-B-16')


def test_openai_tag_forces_quick_gelu(monkeypatch):
    import open_clip
    seen = {}

    def fake_create(arch, pretrained=None, **kwargs):
        seen.update(kwargs, arch=arch, pretrained=pretrained)
        return tiny_clip()
    monkeypatch.setattr(open_clip, 'create_model', fake_create)
    load_clip('openai', arch='ViT-B-16')
    assert seen['force_quick_gelu'] is True and seen['pretrained'] == 'openai'
