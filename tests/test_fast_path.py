"""The fast path (batched windows, fused attention) predicts what the simple path predicts.

Every config of every method: tests/test_method_fidelity.py (batched vs simple); here a real-size
ViT-B/16, the memory budget, mixed-size batches, precisions and the benchmark tool."""
import os.path as osp

import pytest
import torch

from helpers import REPO
from sclip.runner import load_config

SIZES = [(336, 448), (448, 336), (150, 200), (336, 336)]


def build(config, weights, **model_overrides):
    from mmseg.registry import MODELS
    cfg = load_config(osp.join(REPO, config), {'model.pretrained': weights})
    cfg.model.update(model_overrides)
    return MODELS.build(cfg.model).eval()


def compare_paths(fast, simple, images):
    with torch.no_grad():
        sizes = [tuple(image.shape[-2:]) for image in images]
        fast_logits = fast.query_logits(images, sizes)
        simple_logits = simple.query_logits(images, sizes)
        fast_pred = fast.predict(images)
        simple_pred = simple.predict(images)
    for a, b in zip(fast_logits, simple_logits):
        assert torch.allclose(a, b, atol=1e-4)
    same = sum(int((p.pred_sem_seg.data == q.pred_sem_seg.data).sum()) for p, q in zip(fast_pred, simple_pred))
    total = sum(p.pred_sem_seg.data.numel() for p in fast_pred)
    assert same / total >= 0.9999


def test_fast_equals_simple_on_real_size_vit_b16(tmp_path):
    """One random ViT-B/16 at full size (a few classes and one template, to keep it quick)."""
    import open_clip
    model = open_clip.create_model('ViT-B-16-quickgelu', pretrained=None)
    path = str(tmp_path / 'vit-b-16-random.pt')
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    names = tmp_path / 'names.txt'
    names.write_text('background, sky\ncat\ndog\n')
    common = dict(class_names=str(names), templates=['a photo of a {}.'], text_cache_dir=False)
    fast = build('configs/sclip_voc21.py', path, slide_mode='batched', fused_attention=True, **common)
    simple = build('configs/sclip_voc21.py', path, slide_mode='simple', fused_attention=False, **common)
    assert fast.backbone.visual.transformer.resblocks[0].attn.embed_dim == 768
    image = torch.randn(3, 336, 448, generator=torch.Generator().manual_seed(1))
    compare_paths(fast, simple, [image])


def test_window_batch_size_follows_memory_budget(tiny_checkpoint):
    small = build('configs/sclip_voc21.py', tiny_checkpoint, memory_budget_mb=1)
    large = build('configs/sclip_voc21.py', tiny_checkpoint, memory_budget_mb=4096)
    assert 1 <= small.window_batch_size < large.window_batch_size


def test_dataloader_batches_of_different_sizes(tiny_checkpoint):
    """Several images of different sizes in one batch go through the data pre-processor."""
    from mmseg.structures import SegDataSample
    model = build('configs/sclip_voc21.py', tiny_checkpoint)
    images = [torch.randint(0, 255, (3, 336, 448), dtype=torch.uint8),
              torch.randint(0, 255, (3, 336, 300), dtype=torch.uint8)]
    samples = [SegDataSample(metainfo=dict(ori_shape=(375, 500), img_shape=(336, 448))),
               SegDataSample(metainfo=dict(ori_shape=(336, 300), img_shape=(336, 300)))]
    with torch.no_grad():
        out = model.test_step(dict(inputs=images, data_samples=samples))
    assert [tuple(o.pred_sem_seg.data.shape) for o in out] == [(1, 375, 500), (1, 336, 300)]
    alone = model.test_step(dict(inputs=images[1:], data_samples=[SegDataSample(
        metainfo=dict(ori_shape=(336, 300), img_shape=(336, 300)))]))
    assert torch.equal(alone[0].pred_sem_seg.data, out[1].pred_sem_seg.data)


def test_precision_on_cpu_fp16_ignored_bf16_opt_in_and_validated(tiny_checkpoint):
    from sclip.errors import SCLIPError
    image = [torch.randn(3, 224, 300, generator=torch.Generator().manual_seed(2))]
    with torch.no_grad():
        fp32 = build('configs/sclip_voc21.py', tiny_checkpoint, precision='fp32').query_logits(image, [(224, 300)])
        fp16 = build('configs/sclip_voc21.py', tiny_checkpoint, precision='fp16').query_logits(image, [(224, 300)])
        bf16 = build('configs/sclip_voc21.py', tiny_checkpoint, precision='bf16').query_logits(image, [(224, 300)])
    assert torch.equal(fp32[0], fp16[0])  # fp16 autocast is CUDA-only: the CPU default stays fp32
    assert not torch.equal(fp32[0], bf16[0])  # bf16 is an explicit CPU opt-in
    assert torch.allclose(fp32[0], bf16[0], atol=0.05)
    with pytest.raises(SCLIPError, match="model.precision='fp8'"):
        build('configs/sclip_voc21.py', tiny_checkpoint, precision='fp8')


def test_benchmark_tool_reports_every_row(tiny_checkpoint, capsys):
    """A smoke run of tools/benchmark.py on the tiny model: the report, not the timings."""
    from helpers import load_tool
    load_tool('benchmark').main(['--pretrained', tiny_checkpoint, '--images', '1', '--device', 'cpu'])
    out = capsys.readouterr().out
    for row in ('simple path', 'fast path', 'speed-up (fast / simple)', 'ViT GFLOP per window',
                'ViT achieved, fast path', 'matmul peak', 'text classifier cold', 'text classifier cached',
                'peak memory'):
        assert row in out, row
    assert '6 windows each' in out and 'images/s' in out
