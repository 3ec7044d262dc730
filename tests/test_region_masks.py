"""CorrCLIP's region masks (sclip/models/region_masks.py): the SAM2 path against a fake SAM2 with
the package's interface (``sam2.build_sam.build_sam2``, ``SAM2AutomaticMaskGenerator.generate``),
the disk cache (keyed by image content and generator, verified on load: a corrupt entry is a
silent recompute), the sharing within a loader batch, the map correction and DBSCAN against the
official code, and the one-line errors (a missing, foreign or mismatched SAM2 checkpoint, no sam2
package, missing pre-generated masks, a missing DINO checkpoint).
"""
from __future__ import annotations

import os.path as osp
import sys
import types

import numpy as np
import pytest
import torch

from helpers import REPO
from official import corrclip as official
from sclip.errors import SCLIPError
from sclip.models import region_masks
from sclip.models.methods.corrclip import dbscan
from sclip.models.region_masks import RegionMasks, correct_labels


def sam2_checkpoint(path, width=144, blocks=48, layout='sam2') -> str:
    """A SAM2 checkpoint's layout ({'model': state}) with the image encoder's telling shapes."""
    state = {'image_encoder.trunk.patch_embed.proj.weight': torch.zeros(width, 3, 1, 1)}
    state.update({f'image_encoder.trunk.blocks.{i}.attn.qkv.bias': torch.zeros(1) for i in range(blocks)})
    if layout == 'sam1':
        torch.save({'image_encoder.patch_embed.proj.weight': torch.zeros(768, 3, 16, 16)}, path)
    else:
        torch.save({'model': state}, path)
    return str(path)


class FakeGenerator:
    """``SAM2AutomaticMaskGenerator``'s interface: ``generate(rgb uint8 (H, W, 3))`` -> a list of
    dicts with ``segmentation`` (bool (H, W)) and ``area``; overlapping masks of several sizes, one
    of them from the image's content."""
    calls = []

    def __init__(self, model, **settings):
        self.model, self.settings = model, settings

    def generate(self, image):
        FakeGenerator.calls.append(image.shape)
        height, width = image.shape[:2]
        columns = np.arange(width)[None].repeat(height, 0)
        rows = np.arange(height)[:, None].repeat(width, 1)
        out = []
        for segmentation in (image[..., 0] > 200, rows < 5, columns < 10, (columns >= 8) & (columns <= 20)):
            out.append(dict(segmentation=segmentation, area=int(segmentation.sum()), predicted_iou=0.9))
        return out


@pytest.fixture
def fake_sam2(monkeypatch):
    """A ``sam2`` package whose builder records its arguments and whose generator is FakeGenerator."""
    built = []

    class FakeSAM2(torch.nn.Module):
        def half(self):
            self.halved = True
            return self

    def build_sam2(config, checkpoint, device='cuda', apply_postprocessing=True):
        built.append(dict(config=config, checkpoint=checkpoint, device=device,
                          apply_postprocessing=apply_postprocessing))
        return FakeSAM2()
    package = types.ModuleType('sam2')
    build = types.ModuleType('sam2.build_sam')
    build.build_sam2 = build_sam2
    generator = types.ModuleType('sam2.automatic_mask_generator')
    generator.SAM2AutomaticMaskGenerator = FakeGenerator
    for name, module in (('sam2', package), ('sam2.build_sam', build), ('sam2.automatic_mask_generator', generator)):
        monkeypatch.setitem(sys.modules, name, module)
    FakeGenerator.calls = []
    return built


@pytest.fixture
def image(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    pixels[..., 0] = np.arange(40, dtype=np.uint8)[None] * 6  # red grows left to right: nested masks
    path = tmp_path / 'image.png'
    Image.fromarray(pixels).save(path)
    return str(path), pixels


def sam2_spec(tmp_path, **more):
    spec = dict(type='sam2', checkpoint=sam2_checkpoint(tmp_path / 'sam2_hiera_large.pt'),
                cache_dir=str(tmp_path / 'cache'))
    spec.update(more)
    return spec


def test_sam2_masks_are_the_official_composition_with_the_official_settings(fake_sam2, image, tmp_path):
    path, pixels = image
    masks = RegionMasks(sam2_spec(tmp_path)).for_image(path, torch.device('cpu'))
    expected = official.compose_sam2_masks(FakeGenerator(None).generate(pixels), pixels.shape)
    assert masks.dtype == torch.int64 and torch.equal(masks, torch.from_numpy(expected))
    assert len(np.unique(expected)) >= 4  # overlapping masks: the composition order matters
    assert fake_sam2 == [dict(config='sam2_hiera_l.yaml', checkpoint=str(tmp_path / 'sam2_hiera_large.pt'),
                              device='cpu', apply_postprocessing=False)]
    generator = RegionMasks(sam2_spec(tmp_path, cache_dir=False)).source.generator(torch.device('cpu'))
    assert generator.settings == dict(points_per_side=8, pred_iou_thresh=0.4, stability_score_thresh=0.4,
                                      multimask_output=False)


def test_masks_are_cached_by_image_content_and_generator_and_verified(fake_sam2, image, tmp_path):
    path, pixels = image
    first = RegionMasks(sam2_spec(tmp_path)).for_image(path, torch.device('cpu'))
    assert len(FakeGenerator.calls) == 1
    # another model (another run) on the same image and generator: read back, not generated
    again = RegionMasks(sam2_spec(tmp_path)).for_image(path, torch.device('cpu'))
    assert len(FakeGenerator.calls) == 1 and torch.equal(again, first)
    entries = sorted((tmp_path / 'cache').rglob('*.npz'))
    assert len(entries) == 1
    # a corrupt entry (garbage bytes), then a readable one whose mask does not match its checksum:
    # each a silent recompute that rewrites the entry
    for corrupt in ('garbage', 'tampered'):
        if corrupt == 'garbage':
            entries[0].write_bytes(b'not a zip at all')
        else:
            with np.load(entries[0]) as data:
                stored = dict(data)
            stored['mask'] = stored['mask'] + 1
            np.savez(entries[0], **stored)
        calls = len(FakeGenerator.calls)
        recomputed = RegionMasks(sam2_spec(tmp_path)).for_image(path, torch.device('cpu'))
        assert len(FakeGenerator.calls) == calls + 1 and torch.equal(recomputed, first)
        assert torch.equal(RegionMasks(sam2_spec(tmp_path)).for_image(path, torch.device('cpu')), first)
        assert len(FakeGenerator.calls) == calls + 1  # the rewritten entry is good
    # other settings: another entry
    RegionMasks(sam2_spec(tmp_path, points_per_side=32)).for_image(path, torch.device('cpu'))
    assert len(FakeGenerator.calls) == 4 and len(list((tmp_path / 'cache').rglob('*.npz'))) == 2
    # the same file name with other content: generated again
    from PIL import Image
    Image.fromarray(255 - pixels).save(path)
    RegionMasks(sam2_spec(tmp_path)).for_image(path, torch.device('cpu'))
    assert len(FakeGenerator.calls) == 5


def test_masks_are_made_once_per_image_for_the_models_of_a_batch(fake_sam2, image, tmp_path):
    path, _ = image
    shared = {}
    spec = sam2_spec(tmp_path, cache_dir=False)
    a = RegionMasks(spec).for_image(path, torch.device('cpu'), shared)
    b = RegionMasks(spec).for_image(path, torch.device('cpu'), shared)
    assert a is b and len(FakeGenerator.calls) == 1


@pytest.mark.parametrize('case', ['missing', 'sam1', 'other_size', 'not_a_checkpoint'])
def test_a_wrong_sam2_checkpoint_is_one_line(case, tmp_path):
    path = tmp_path / 'ckpt.pt'
    if case == 'sam1':
        sam2_checkpoint(path, layout='sam1')
    elif case == 'other_size':
        sam2_checkpoint(path, width=112, blocks=24)
    elif case == 'not_a_checkpoint':
        path.write_text('hello')
    with pytest.raises(SCLIPError) as error:
        RegionMasks(dict(type='sam2', checkpoint=str(path)))
    message = str(error.value)
    assert '\n' not in message and str(path) in message
    expected = {'missing': 'does not exist', 'sam1': 'SAM 1', 'other_size': "looks like sam2_hiera_b+.yaml",
                'not_a_checkpoint': 'could not be read'}[case]
    assert expected in message


def test_without_the_sam2_package_one_line(image, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'sam2', None)
    monkeypatch.setitem(sys.modules, 'sam2.build_sam', None)
    source = RegionMasks(sam2_spec(tmp_path))
    with pytest.raises(SCLIPError, match='pip install .*sam2') as error:
        source.for_image(image[0], torch.device('cpu'))
    assert '\n' not in str(error.value)


def test_pre_generated_masks_and_their_errors(tmp_path):
    mask = np.arange(12).reshape(3, 4)
    np.savez(tmp_path / 'a.npz', instance_mask=mask)
    source = RegionMasks(dict(type='files', root=str(tmp_path), checkpoint=None, points_per_side=8))
    assert torch.equal(source.for_image('/data/images/a.jpg', torch.device('cpu')), torch.from_numpy(mask))
    with pytest.raises(SCLIPError, match='b.npz: no region masks') as error:
        source.for_image('/data/images/b.jpg', torch.device('cpu'))
    assert '\n' not in str(error.value)
    (tmp_path / 'c.npz').write_bytes(b'truncated')
    with pytest.raises(SCLIPError, match='cannot be read as region masks'):
        source.for_image('c.png', torch.device('cpu'))
    with pytest.raises(SCLIPError, match='entityseg'):
        RegionMasks(dict(type='entityseg'))
    with pytest.raises(SCLIPError, match='points_per_sid'):
        RegionMasks(dict(type='sam2', points_per_sid=8))
    with pytest.raises(SCLIPError, match='root is not set'):
        RegionMasks(dict(type='files', root=None))
    with pytest.raises(SCLIPError, match='image file'):
        source.for_image(None, torch.device('cpu'))


def official_correction(labels, regions):
    """``postprocess_result``'s map correction, as the oracle runs it."""
    segmentor = official.OfficialCorrCLIP.__new__(official.OfficialCorrCLIP)
    seg_pred = labels.clone()
    values = torch.unique(regions)[1:]
    for value in values:
        mask = (regions == value)[None]
        seg_pred[mask] = torch.mode(seg_pred[mask])[0]
    del segmentor
    return seg_pred


def test_map_correction_is_the_official_majority_vote_ties_included():
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        labels = torch.randint(0, 4, (1, 13, 17), generator=generator)
        regions = torch.randint(0, 6, (13, 17), generator=generator) + (trial % 3) * 5
        regions[:2] = 7 * (trial % 2)  # sometimes the unsegmented value is not the smallest
        assert torch.equal(correct_labels(labels, regions), official_correction(labels, regions))
    # a tie: 2 pixels of label 3 and 2 of label 1 -> 1 (torch.mode: the smallest)
    labels = torch.tensor([[[3, 1, 3, 1, 0]]])
    regions = torch.tensor([[5, 5, 5, 5, 0]])
    assert correct_labels(labels, regions).tolist() == [[[1, 1, 1, 1, 0]]]
    with pytest.raises(SCLIPError, match="image file's size"):
        correct_labels(labels, torch.zeros(2, 5, dtype=torch.long))


def test_dbscan_is_scikit_learns():
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(2, 12))
        features = rng.normal(size=(n, 3)) + (trial % 3) * rng.normal(size=(1, 3))
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        similarity = features @ features.T + rng.normal(0, 1e-3, (n, n))  # slightly asymmetric
        distances = similarity.max() - similarity
        for eps, min_samples in ((0.2, 1), (0.5, 2), (0.05, 3)):
            assert dbscan(distances, eps, min_samples).tolist() == \
                official.sklearn_dbscan(distances, eps, min_samples).tolist()


def test_a_missing_dino_checkpoint_is_one_line(tmp_path):
    """CorrCLIP's DINO is ``model.vfm`` (ProxyCLIP's builder, tests/test_vfm.py has the rest)."""
    from sclip.models.vfm import build_vfm
    from test_method_fidelity import load_config
    cfg = load_config(osp.join(REPO, 'configs/corrclip/voc21.py'))
    with pytest.raises(SCLIPError) as error:
        build_vfm(cfg.model.vfm.type, checkpoint=str(tmp_path / 'nope.pth'))
    assert 'nope.pth' in str(error.value) and 'dino_vitb8' in str(error.value) and '\n' not in str(error.value)


def test_the_result_identity_names_the_mask_generator_and_its_checkpoint(tmp_path):
    from sclip.identity import fingerprint, run_identity
    from test_method_fidelity import load_config
    checkpoint = sam2_checkpoint(tmp_path / 'sam2_hiera_large.pt')
    path = osp.join(REPO, 'configs/corrclip/voc21.py')
    files = run_identity(load_config(path))
    assert files['region_masks'] == {'type': 'files', 'root': 'data/region_masks/voc'}
    sam2 = run_identity(load_config(path, {'model.region_masks.type': 'sam2',
                                           'model.region_masks.checkpoint': checkpoint}))
    import hashlib
    with open(checkpoint, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert sam2['region_masks']['checkpoint_sha256'] == digest
    assert sam2['region_masks']['points_per_side'] == 8
    assert fingerprint(sam2) != fingerprint(files)
    sam2_checkpoint(tmp_path / 'sam2_hiera_large.pt', width=144, blocks=48)  # the same bytes: same identity
    torch.save({'model': {'other': torch.ones(1)}}, checkpoint)
    assert run_identity(load_config(path, {'model.region_masks.type': 'sam2',
                                           'model.region_masks.checkpoint': checkpoint}))['fingerprint'] \
        != sam2['fingerprint']
    assert region_masks.PAD_VALUE == 10000
