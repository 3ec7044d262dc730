"""FLOSS's template rankings computed for any dataset (tools/floss_rankings.py, sclip/floss_ranking.py).

1. The tool's JSON equals the transcription of FLOSS's own ranking (tests/official/floss_ranking.py:
   its NACLIP's per-template probabilities in ``compute_metric`` mode and ``EntropyMetric``) on a tiny
   random CLIP and synthetic images: the same keys and template order per class, entropies within 2e-5,
   pixel percentages equal; windows and the whole image; a class some templates never predict included
   (entropy 0.0, ranked first: the official quirk).
2. The configs that read a computed ranking (remote sensing, ADE-847, Context-459): a missing file is one
   line naming it and the command that writes it; with the tool's file a config runs end to end.
3. Bad input to the tool is one line naming the file or option.
"""
import json
import os.path as osp

import open_clip
import pytest

from helpers import REPO, assert_one_line, load_tool, run_main, write_image, write_openai_checkpoint
from official import floss_ranking as official
from official.common import get_cls_idx
from sclip.errors import SCLIPError

CONFIG = osp.join(REPO, 'configs/remote_sensing/floss/potsdam.py')  # 6 classes, 9 names (multi-name classes)
# inputs of 80-96 pixels a side, 64-pixel windows with stride 32: 4 windows an image (or the whole image)
SMALL = ['test_dataloader.dataset.pipeline.1.scale=(96,96)', 'model.slide_crop=64', 'model.slide_stride=32']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp('floss_ranking')
    for index, size in enumerate([(40, 48), (36, 30), (44, 44)]):
        write_image(str(folder / 'images' / f'tile_{index}.png'), size, seed=index)
    weights = write_openai_checkpoint(str(folder / 'w.pt'), width=64, layers=2, seed=3)
    return folder, weights


def tool_rankings(folder, weights, out, *extra):
    tool = load_tool('floss_rankings')
    tool.main([CONFIG, '--out', str(out), '--img-dir', str(folder / 'images'), '--split', 'train', '--dataset',
               'potsdam', '--device', 'cpu', '--cfg-options', f'model.clip_path={weights}', *SMALL,
               f'model.text_cache_dir={folder / "cache"}', *extra])
    with open(out) as f:
        return json.load(f)


TEXT = {}
# float32 logits under FLOSS's logit scale of 100: the entropies of two exact float32 computations
# (ours batched over windows and templates, the official one window and one prompt at a time) differ
# by up to 1.5e-6 on one CPU and 5.3e-6 on an AMD EPYC (observed: the BLAS kernels, and so the
# rounding, depend on the processor); the template order itself is asserted equal
ENTROPY_TOL = 2e-5


def oracle_rankings(folder, weights, *extra):
    """The transcription on the same inputs (the config's pipeline and normalisation, shared)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from sclip.floss_ranking import folder_images, samples
    from sclip.options import parse_cfg_options
    from sclip.runner import load_config
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
    cfg = load_config(CONFIG, parse_cfg_options([f'model.clip_path={weights}', *SMALL, *extra]))
    cfg.model.text = None
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).eval()
    query_words, query_idx = get_cls_idx(cfg.model.class_names, ',')
    clip = model.text_model
    if weights not in TEXT:  # one prompt at a time, as the official loop: once per module
        TEXT[weights] = official.encode_text_features(clip.encode_text, open_clip.tokenize, query_words,
                                                      list(OPENAI_IMAGENET_TEMPLATES))
    feats = TEXT[weights]
    clip.visual = model.backbone.visual
    try:
        segmentor = official.OfficialRankingNACLIP(clip, feats, query_idx, logit_scale=cfg.model.logit_scale,
                                                   slide_crop=model.slide_crop[0], slide_stride=model.slide_stride[0])
        metric = official.EntropyMetric(num_classes=model.num_classes, dataset_name='potsdam')
        for _, image, size in samples(model, cfg, folder_images(str(folder / 'images'))):
            metric.process(size, segmentor.predict(image[None], size))
    finally:
        clip.visual = None
    with open(cfg.model.class_names) as f:
        classes = f.read().splitlines()  # the dataset's class names: each class file line
    return metric.rankings(classes)


@pytest.mark.parametrize('crop', ['windows', 'whole image'])
def test_the_tools_rankings_are_floss_entropy_metric(workspace, tmp_path, crop):
    folder, weights = workspace
    extra = [] if crop == 'windows' else ['model.slide_crop=0', "model.whole_image_upsample='via_input'"]
    ours = tool_rankings(folder, weights, tmp_path / 'r.json', *extra)
    expected = oracle_rankings(folder, weights, *extra)
    assert ours.keys() == expected.keys() and {k: ours[k] for k in ('model', 'dataset', 'split')} == \
        {'model': 'naclip', 'dataset': 'potsdam', 'split': 'train'}
    assert list(ours['classes']) == list(expected['classes']) == [
        'road,parkinglot', 'building', 'lowvegetation', 'tree', 'car', 'clutter,background']
    never, predicted, largest = 0, 0, 0.0
    for key, table in expected['classes'].items():
        mine, theirs = ours['classes'][key]['entropy_ranking'], table['entropy_ranking']
        assert [e['template_id'] for e in mine] == [e['template_id'] for e in theirs], key
        assert [e['rank'] for e in mine] == list(range(1, 81))
        for a, b in zip(mine, theirs):
            largest = max(largest, abs(a['entropy'] - b['entropy']))
            assert abs(a['pixel_percentage'] - b['pixel_percentage']) < 1e-9
        never += sum(e['pixel_percentage'] == 0 for e in theirs)
        predicted += sum(e['pixel_percentage'] > 0 for e in theirs)
        zero = [e for e in theirs if e['pixel_percentage'] == 0]
        assert all(e['entropy'] == 0.0 for e in zero) and theirs[:len(zero)] == zero  # the quirk: ranked first
    assert largest <= ENTROPY_TOL, f'entropies differ by up to {largest:.3g}'
    assert never > 0 and predicted > 0  # a class some templates never predict, classes others do
    # the per-image pixel totals: every template's percentages sum to 100
    for template in range(80):
        total = sum(e['pixel_percentage'] for t in ours['classes'].values() for e in t['entropy_ranking']
                    if e['template_id'] == template)
        assert abs(total - 100) < 1e-9


def test_the_features_are_computed_once_per_window(workspace, tmp_path, monkeypatch):
    """One vision pass: 80 templates are 80 classifier products over the same window features."""
    from sclip.models.segmentor import SCLIPSegmentor
    folder, weights = workspace
    calls = []
    original = SCLIPSegmentor.extract_feat
    monkeypatch.setattr(SCLIPSegmentor, 'extract_feat', lambda self, inputs, *a, **k: calls.append(
        inputs.shape[0]) or original(self, inputs, *a, **k))
    tool_rankings(folder, weights, tmp_path / 'r.json', '--memory-mb', '1')  # one template a chunk
    assert sum(calls) == 3 * 4  # three images of four windows each


def test_a_missing_computed_ranking_is_one_line_with_its_command(workspace, tmp_path, capsys):
    from sclip.synthetic import make_remote_sensing_dataset
    folder, weights = workspace
    root = make_remote_sensing_dataset('potsdam', str(tmp_path / 'data'), sizes=[(40, 48)])
    missing = tmp_path / 'nowhere.json'
    code, err = run_main(capsys, CONFIG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                         f'test_dataloader.dataset.data_root={root}', f'model.clip_path={weights}',
                         f'model.text.template_ranking.file={missing}')
    assert_one_line(code, err, str(missing), f'python tools/floss_rankings.py configs/remote_sensing/floss/potsdam.py '
                                             f'--out {missing}')
    for config in ('configs/floss/ade847.py', 'configs/floss/context459.py'):  # the shipped paths, as written
        code, err = run_main(capsys, osp.join(REPO, config), '--work-dir', str(tmp_path / 'w2'))
        name = osp.basename(config)[:-3]
        assert_one_line(code, err, f'python tools/floss_rankings.py {config} --out '
                                   f'data/floss_rankings/template_rankings_naclip_{name}.json')


def test_rankings_then_the_config_end_to_end(workspace, tmp_path, monkeypatch):
    """The tool on a synthetic Potsdam in its layout (the config's own images), then the config with it."""
    from helpers import run_tool
    from sclip.synthetic import make_remote_sensing_dataset
    folder, weights = workspace
    root = make_remote_sensing_dataset('potsdam', str(tmp_path / 'data'), sizes=[(40, 48), (36, 30)])
    monkeypatch.chdir(tmp_path)  # the config's relative ranking path, data/floss_rankings/
    tool = load_tool('floss_rankings')
    out = 'data/floss_rankings/template_rankings_naclip_potsdam.json'
    tool.main([CONFIG, '--out', out, '--device', 'cpu', '--cfg-options', f'model.clip_path={weights}', *SMALL,
               f'test_dataloader.dataset.data_root={root}', f'model.text_cache_dir={folder / "cache"}'])
    with open(out) as f:
        table = json.load(f)
    assert table['split'] == osp.join(root, 'img_dir/val') and len(table['classes']) == 6
    metrics = run_tool(CONFIG, root, weights, str(tmp_path / 'work'), '--cfg-options', *SMALL,
                       f'model.text_cache_dir={folder / "cache"}')
    assert metrics['identity']['text']['template_ranking'] == out
    assert metrics['identity']['text']['template_ranking_sha256'] is not None
    assert metrics['method'] == 'NACLIP + FLOSS' and metrics['identity']['data']['num_images'] == 2
    # no template predicts 'car' on these images: FLOSS's reader stops there; the config keeps it on 80 templates
    assert not [e for e in table['classes']['car']['entropy_ranking'] if e['pixel_percentage'] > 0]


def test_class_keys_are_read_back_and_checked(workspace, tmp_path):
    """keys='class': every name of a class takes its class's ranking; a file of other classes is one line."""
    from sclip.class_names import load_class_names
    from sclip.models.class_texts import load_template_ranking
    folder, weights = workspace
    table = tool_rankings(folder, weights, tmp_path / 'r.json')
    names = load_class_names(osp.join(REPO, 'configs/class_names/segearth_ov/potsdam.txt'), ',')
    best = {key: [e['template_id'] for e in t['entropy_ranking'] if e['pixel_percentage'] > 0][:2]
            for key, t in table['classes'].items()}
    assert best['car'] == [] and all(best[key] for key in ('road,parkinglot', 'clutter,background'))
    with pytest.raises(SCLIPError, match="class 'car' has no template with pixel_percentage > 0.*unranked="):
        load_template_ranking(dict(file=str(tmp_path / 'r.json'), top_n=2, keys='class'), names, 80)  # FLOSS's
    ranking = load_template_ranking(dict(file=str(tmp_path / 'r.json'), top_n=2, keys='class',
                                         unranked='all_templates'), names, 80)
    assert ranking.template_ids[:2] == [best['road,parkinglot']] * 2  # 'road' and 'parking lot'
    assert ranking.template_ids[-2:] == [best['clutter,background']] * 2
    car = names.classes.index(next(c for c in names.classes if c[0] == 'car'))
    assert [ids for ids, index in zip(ranking.template_ids, names.query_class) if index == car] == [list(range(80))]
    with pytest.raises(SCLIPError, match="unranked='sometimes'"):
        load_template_ranking(dict(file=str(tmp_path / 'r.json'), keys='class', unranked='sometimes'), names, 80)
    other = load_class_names(osp.join(REPO, 'configs/class_names/segearth_ov/vaihingen.txt'), ',')
    if other.classes != names.classes:
        with pytest.raises(SCLIPError, match='no ranking for'):
            load_template_ranking(dict(file=str(tmp_path / 'r.json'), keys='class'), other, 80)
    with pytest.raises(SCLIPError, match="keys='whatever'"):
        load_template_ranking(dict(file=str(tmp_path / 'r.json'), keys='whatever'), names, 80)


def test_bad_input_is_one_line(workspace, tmp_path, capsys):
    from sclip.cli import main_guard
    folder, weights = workspace
    tool = load_tool('floss_rankings')

    def fails(*args):
        with pytest.raises(SystemExit) as exit_info:
            main_guard(lambda: tool.main([CONFIG, *args]))
        return exit_info.value.code, capsys.readouterr().err
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert_one_line(*fails('--out', str(tmp_path / 'r.json'), '--img-dir', str(empty)), str(empty), 'no image files')
    assert_one_line(*fails('--out', str(tmp_path / 'r.json'), '--img-dir', str(tmp_path / 'nope')), 'nope')
    assert_one_line(*fails('--out', str(tmp_path / 'r.txt')), 'r.txt', '.json')
    assert_one_line(*fails('--out', str(tmp_path / 'r.json'), '--cfg-options', 'test_dataloader.dataset.data_root=/nope'),
                    '/nope', '--img-dir')
    images = tmp_path / 'bad_images'
    images.mkdir()
    (images / 'x.png').write_bytes(b'not a png')
    assert_one_line(*fails('--out', str(tmp_path / 'r.json'), '--img-dir', str(images), '--device', 'cpu',
                           '--cfg-options', f'model.clip_path={weights}'), 'x.png')
    assert not (tmp_path / 'r.json').exists()
