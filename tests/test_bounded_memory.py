"""Images of any size: the post-processing at the original size is bounded (issue 19).

Per-query logits at an 8000x8000 original size are classes x 64M floats, several copies: the
run was killed by the kernel. Above ``model.memory_budget_mb`` the labels are computed by column
tiles (separable bilinear interpolation, equal to float32 rounding) and equal the whole map's; where a run
still cannot fit (PAMR, half precision), one line refuses the image before its work."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample

from helpers import REPO
from sclip.errors import SCLIPError
from sclip.models import postprocess
from sclip.runner import load_config


def build(weights, **model_overrides):
    from mmseg.registry import MODELS
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'), {'model.pretrained': weights})
    cfg.model.update(dict(templates=['a photo of a {}.'], text_cache_dir=False), **model_overrides)
    return MODELS.build(cfg.model).eval()


def sample(size, path='big.jpg'):
    return SegDataSample(metainfo=dict(ori_shape=size, img_shape=size, img_path=path))


@pytest.mark.parametrize('source,size,tile', [((21, 28), (336, 448), 7), ((336, 448), (500, 375), 13),
                                              ((20, 30), (999, 1001), 1), ((28, 28), (333, 517), 64),
                                              ((40, 40), (40, 40), 3), ((50, 60), (17, 23), 5)])
def test_column_tiles_are_the_upsampled_map(source, size, tile):
    """Bit for bit in most sizes (the first four here), else to float32 rounding."""
    logits = torch.randn(6, *source, generator=torch.Generator().manual_seed(sum(size)))
    whole = F.interpolate(logits[None], size=size, mode='bilinear', align_corners=False)[0]
    tiles = torch.cat([t for _, t in postprocess.upsampled_columns(logits, size, tile)], dim=-1)
    assert tiles.shape == whole.shape
    assert torch.allclose(tiles, whole, rtol=0, atol=1e-6)
    if size[0] >= source[0] and size[1] >= source[1]:
        assert (tiles == whole).float().mean() > 0.99


@pytest.mark.parametrize('area_thd,prob_thd', [(None, 0.0), (0.1, 0.0), (None, 0.06), (0.05, 0.055)])
@pytest.mark.parametrize('tile', [1, 7, 64])
def test_tiled_labels_equal_the_whole_maps(area_thd, prob_thd, tile):
    """Synonym rows (query_class with repeats), thresholds and area suppression, odd sizes."""
    generator = torch.Generator().manual_seed(tile)
    query_class = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    logits = torch.randn(len(query_class), 23, 31, generator=generator) * 0.1
    size = (201, 333)
    full = F.interpolate(logits[None], size=size, mode='bilinear', align_corners=False)[0]
    _, expected = postprocess.predict_labels(full, query_class, 15, 40.0, prob_thd, area_thd, 0)
    labels = postprocess.predict_labels_tiled(logits, size, query_class, 15, 40.0, prob_thd, area_thd, 0, tile)
    assert labels.shape == expected.shape == (1,) + size
    assert torch.equal(labels, expected)
    if area_thd is not None:  # the suppression really happened: some class lost its pixels
        kept = postprocess.predict_labels(full, query_class, 15, 40.0, prob_thd, None, 0)[1]
        assert not torch.equal(kept, expected)


def test_aligned_softmax_is_the_whole_maps_softmax_on_one_thread():
    """A tile's probabilities are bitwise those of the whole map (one thread: the whole map's
    only scalar tail is its last pixels, here none: 64 x 48 pixels)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        logits = torch.randn(21, 64, 48, generator=torch.Generator().manual_seed(3)) * 4
        whole = logits.softmax(dim=0)
        for width in (1, 5, 16, 48):
            tiles = torch.cat([postprocess.aligned_softmax(logits[..., c:c + width].contiguous())
                               for c in range(0, 48, width)], dim=-1)
            assert torch.equal(tiles, whole)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize('overrides', [dict(), dict(area_thd=0.1, prob_thd=0.2), dict(slide_crop=0)])
def test_segmentor_with_a_tiny_budget_predicts_the_same_labels(tiny_checkpoint, overrides):
    """The same model with the default budget (whole maps) and one of a few kB (column tiles)."""
    whole = build(tiny_checkpoint, **overrides)
    tiled = build(tiny_checkpoint, memory_budget_mb=0.05, **overrides)
    images = [torch.randn(3, 112, 150, generator=torch.Generator().manual_seed(5))]
    sizes = [(301, 403)]
    with torch.no_grad():
        deferred = tiled.query_logits(images, sizes)[0]
        assert deferred.__class__.__name__ == 'DeferredUpsample' and 1 <= deferred.tile_width < 403
        a = whole.predict(images, [sample(sizes[0])])[0]
        b = tiled.predict(images, [sample(sizes[0])])[0]
    assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
    assert 'seg_logits' in a and 'seg_logits' not in b  # the full-resolution scores are what does not fit


def test_pamr_model_sharing_a_tiled_map_upsamples_it_whole(tiny_checkpoint):
    """In a sweep group, a model with PAMR may receive the logits a tiling model deferred."""
    tiled = build(tiny_checkpoint, memory_budget_mb=0.05)
    pamr = build(tiny_checkpoint, pamr_steps=2)
    images = [torch.randn(3, 112, 112, generator=torch.Generator().manual_seed(6))]
    with torch.no_grad():
        shared = {}
        tiled.predict(images, [sample((150, 160))], shared=shared)
        alone = pamr.predict(images, [sample((150, 160))])[0]
        together = pamr.predict(images, [sample((150, 160))], shared=shared)[0]
    assert torch.equal(alone.pred_sem_seg.data, together.pred_sem_seg.data)


@pytest.mark.parametrize('overrides,needle', [(dict(pamr_steps=10), 'with PAMR'),
                                              (dict(precision='official'), 'half precision'),
                                              (dict(), 'GB')])
def test_image_that_cannot_fit_is_refused_before_its_work(tiny_checkpoint, monkeypatch, overrides, needle):
    from sclip.models import segmentor
    model = build(tiny_checkpoint, **overrides)
    monkeypatch.setattr(segmentor, 'available_memory', lambda device: 2 ** 30)  # 1 GB
    calls = []
    monkeypatch.setattr(model, 'query_logits', lambda *a, **k: calls.append(1))
    side = 20000 if not overrides else 8000  # tiled: only the label maps must fit
    with pytest.raises(SCLIPError) as error:
        model.predict([torch.zeros(3, 224, 224)], [sample((side, side), '/data/huge.jpg')])
    message = str(error.value)
    assert '/data/huge.jpg' in message and f'{side}x{side}' in message and needle in message
    assert '\n' not in message and not calls


def test_a_large_image_runs_in_bounded_memory(tiny_checkpoint, tmp_path):
    """3000x3000 original size, 6 classes: the peak stays below one full-resolution map of
    per-query logits (the whole-map path holds three or more of them; the int64 label map alone
    is a third of one). Measured in a subprocess: the high-water mark of its resident memory
    around the prediction alone."""
    names = tmp_path / 'names.txt'
    names.write_text('background\ncat\ndog\nsky\ngrass\ncar\n')
    script = f'''
import sys, torch
sys.path.insert(0, {osp.join(REPO, 'tests')!r})
from test_bounded_memory import build, sample
model = build({tiny_checkpoint!r}, memory_budget_mb=float(sys.argv[1]), class_names={str(names)!r})
image = [torch.randn(3, 224, 224)]
with torch.no_grad():
    model.predict(image, [sample((224, 224))])   # warm: text embeddings, allocator
    def rss(key):
        return int([l for l in open('/proc/self/status') if l.startswith(key)][0].split()[1]) * 1024
    before = rss('VmRSS:')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the high-water mark
    model.predict(image, [sample((3000, 3000))])
    print(rss('VmHWM:') - before, len(model.names.queries))
'''
    def peak(budget):
        out = subprocess.run([sys.executable, '-c', script, str(budget)], capture_output=True, text=True,
                             cwd=REPO, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        grown, queries = map(int, out.stdout.split()[-2:])
        return grown, queries
    grown, queries = peak(8)
    one_map = queries * 3000 * 3000 * 4
    assert queries == 6 and grown < one_map, (grown, one_map)
    whole, _ = peak(1e9)  # the check can fail: the whole-map path exceeds it
    assert whole > 2 * one_map, (whole, one_map)
