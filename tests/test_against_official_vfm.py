"""--against-official for the codes with a foundation model (ProxyCLIP, FSA, CASS): their network
loads served locally, their fp16 casts kept fp32, their vendored packages imported before ours.

The checkout here is a stand-in written like those repositories: its segmentor fetches its
foundation model with ``torch.hub.load('<github repo>:main', name)`` (whose hubconf downloads the
weights with ``torch.hub.load_state_dict_from_url``), casts it with ``.half()``, and loads CLIP
through a vendored package of a name that is already imported (ProxyCLIP's ``open_clip``) whose
``download_pretrained_from_url`` would go to the network. Nothing here reaches the network.
"""
import sys
import types
from types import SimpleNamespace

import pytest
import torch

from sclip.errors import SCLIPError
from sclip.official_compare import build_official_segmentor, half_redirected, hub_redirected, official_half_dropped

VENDORED = 'vendored_clip_for_test'  # stands for ProxyCLIP's open_clip: a name ours already imported

SEGMENTOR = f'''
import torch
from mmseg.registry import MODELS
from {VENDORED} import load_clip


@MODELS.register_module()
class VFMSegmentor(torch.nn.Module):
    def __init__(self, vfm_model='tiny_vit', device=torch.device('cuda')):
        super().__init__()
        self.clip_file = load_clip()
        self.vfm = torch.hub.load('facebookresearch/tiny:main', vfm_model)
        self.vfm = self.vfm.half()
        self.vfm.eval().to(device)
        self.scale = torch.ones(2).to(torch.float16)
'''

HUBCONF = '''
import torch
dependencies = ['torch']


def tiny_vit(pretrained=True):
    model = torch.nn.Linear(3, 2)
    if pretrained:
        model.load_state_dict(torch.hub.load_state_dict_from_url(
            url='https://dl.example.invalid/tiny/tiny_pretrain.pth', map_location='cpu'))
    return model
'''


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    repo = tmp_path / 'official'
    (repo / 'configs').mkdir(parents=True)
    (repo / VENDORED).mkdir()
    (repo / VENDORED / '__init__.py').write_text(
        'from .pretrained import download_pretrained_from_url\n\n\n'
        'def load_clip():\n    return download_pretrained_from_url("https://example.invalid/ViT-B-16.pt")\n')
    (repo / VENDORED / 'pretrained.py').write_text(
        'def download_pretrained_from_url(url, cache_dir=None):\n    raise RuntimeError("network: " + url)\n')
    (repo / 'segmentor.py').write_text(SEGMENTOR)
    (repo / 'configs' / 'cfg_voc21.py').write_text("model = dict(type='VFMSegmentor')\n")
    hub = tmp_path / 'hub'
    hub.mkdir()
    (hub / 'hubconf.py').write_text(HUBCONF)
    weights = torch.nn.Linear(3, 2).state_dict()
    checkpoint = str(tmp_path / 'tiny_pretrain.pth')
    torch.save({key: value + 0.1234567 for key, value in weights.items()}, checkpoint)  # not fp16-exact
    ours = types.ModuleType(VENDORED)  # our package of that name, imported before the checkout
    monkeypatch.setitem(sys.modules, VENDORED, ours)
    monkeypatch.delitem(sys.modules, 'hubconf', raising=False)
    return SimpleNamespace(repo=str(repo), hub=str(hub), checkpoint=checkpoint, ours=ours,
                           config=str(repo / 'configs' / 'cfg_voc21.py'))


def test_vfm_from_the_local_hub_and_our_checkpoint_in_fp32(checkout, tmp_path):
    torch_state = (torch.hub.load, torch.hub.load_state_dict_from_url, torch.Tensor.half, torch.nn.Module.half,
                   torch.Tensor.to, torch.nn.Module.to)
    weights = str(tmp_path / 'clip.pt')
    model = build_official_segmentor(checkout.repo, checkout.config, weights, hub_dir=checkout.hub,
                                     checkpoints=[checkout.checkpoint], half_to_fp32=True)
    expected = torch.load(checkout.checkpoint, weights_only=True)
    assert model.clip_file == weights  # the vendored package's CLIP download answered with our file
    for key, value in model.vfm.state_dict().items():  # the same weights, not rounded to fp16
        assert value.dtype == torch.float32 and torch.equal(value, expected[key]), key
    assert model.scale.dtype == torch.float32
    assert sys.modules[VENDORED] is checkout.ours  # ours is back; the checkout's served its import
    assert (torch.hub.load, torch.hub.load_state_dict_from_url, torch.Tensor.half, torch.nn.Module.half,
            torch.Tensor.to, torch.nn.Module.to) == torch_state


def test_without_the_redirection_the_official_casts_stay(checkout, tmp_path):
    model = build_official_segmentor(checkout.repo, checkout.config, str(tmp_path / 'clip.pt'),
                                     hub_dir=checkout.hub, checkpoints=[checkout.checkpoint])
    expected = torch.load(checkout.checkpoint, weights_only=True)
    assert model.vfm.weight.dtype == torch.float16
    assert torch.equal(model.vfm.weight, expected['weight'].half())


@pytest.mark.parametrize('case, needle', [('no-hub', '--hub-dir'), ('other-file', 'tiny_pretrain.pth')])
def test_a_network_load_without_a_local_answer_is_one_line(checkout, tmp_path, case, needle):
    hub = None if case == 'no-hub' else checkout.hub
    other = str(tmp_path / 'dino_vitbase8_pretrain.pth')
    torch.save({}, other)
    with pytest.raises(SCLIPError) as error:
        build_official_segmentor(checkout.repo, checkout.config, str(tmp_path / 'clip.pt'), hub_dir=hub,
                                 checkpoints=[other])
    assert needle in str(error.value) and '\n' not in str(error.value)
    assert sys.modules[VENDORED] is checkout.ours


def test_half_redirected_keeps_fp32_and_only_inside():
    module, tensor = torch.nn.Linear(2, 2), torch.randn(3)
    with half_redirected():
        assert module.half().weight.dtype == torch.float32
        assert tensor.half().dtype == torch.float32
        assert tensor.to(torch.float16).dtype == tensor.to('cpu', torch.float16).dtype == torch.float32
        assert tensor.to(dtype=torch.float16).dtype == torch.float32
        assert tensor.to(torch.float64).dtype == torch.float64  # other casts untouched
        assert module.to(dtype=torch.float16).weight.dtype == torch.float32
    assert tensor.half().dtype == torch.float16 and module.half().weight.dtype == torch.float16


def test_hub_redirected_is_undone_and_leaves_local_loads_alone(tmp_path):
    (tmp_path / 'hubconf.py').write_text("dependencies = []\n\n\ndef seven():\n    return 7\n")
    load = torch.hub.load
    with hub_redirected(None):
        assert torch.hub.load(str(tmp_path), 'seven', source='local') == 7
    assert torch.hub.load is load
    sys.modules.pop('hubconf', None)


def test_official_half_casts_are_dropped_where_ours_drops_them():
    def ours(precision, **method):
        return SimpleNamespace(precision=precision, backbone=SimpleNamespace(method=SimpleNamespace(**method)))
    assert official_half_dropped(ours('fp32'))  # ProxyCLIP, FSA on the CPU: fp32 both sides
    assert not official_half_dropped(ours('official'))  # the official casts both sides
    assert not official_half_dropped(ours('fp32', official_vfm_fp16=False))  # CASS keeps its fp16 DINO keys
