"""tools/settings_table.py: the tables of docs/PROTOCOL.md equal the tool's output, and the
output equals the values read straight from each config and class-name file."""
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

from helpers import REPO, load_tool
from sclip.errors import SCLIPError

DOC = osp.join(REPO, 'docs', 'PROTOCOL.md')
# reduce_zero_label of each benchmark in the official SCLIP configs (background or "other" ignored)
OFFICIAL_REDUCE_ZERO_LABEL = dict(voc21=False, voc20=True, context60=False, context59=True, coco_object=False,
                                  coco_stuff164k=False, coco_stuff10k=True, cityscapes=False, ade20k=True,
                                  ade847=False, context459=False)


@pytest.fixture(scope='module')
def tool():
    return load_tool('settings_table')


@pytest.fixture(scope='module')
def rendered(tool):
    return {block: tool.render(block) for block in tool.BLOCKS}


def table_rows(lines):
    """Markdown table lines -> list of {header: cell}."""
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    return [dict(zip(header, (c.strip() for c in line.strip('|').split('|')))) for line in lines[2:]]


def constants(line):
    """'Every benchmark: k: v; k: v.' -> {k: v}; separators inside backticks are kept."""
    hidden = re.sub(r'`[^`]*`', lambda m: m.group(0).replace(';', '\0'), line[len('Every benchmark: '):-1])
    pairs = [item.replace('\0', ';').split(': ', 1) for item in hidden.split('; ')]
    return dict(pairs)


def parse_methods(text):
    """{config pattern: {benchmark label: {column: cell}}} from the rendered methods block."""
    methods = {}
    for section in text.split('#### ')[1:]:
        lines = section.strip().splitlines()
        pattern = re.search(r'\(`configs/([^`]+)`', lines[0]).group(1).replace('<benchmark>', '{}')
        shared = constants(lines[2])
        start = 6 if lines[4].startswith('No config') else 4
        methods[pattern] = {row['benchmark']: {**shared, **row} for row in table_rows(lines[start:])}
    return methods


def expected_cell(value):
    return '—' if value is None else str(value)


def test_document_tables_equal_the_tool_output(tool, rendered):
    with open(DOC, encoding='utf-8') as f:
        document = f.read()
    for block, text in rendered.items():
        span = tool.read_block(document, block)
        assert span is not None, f'docs/PROTOCOL.md lost its {block!r} markers'
        assert document[slice(*span)] == text, (f'docs/PROTOCOL.md {block!r} table is stale: run '
                                                'python tools/settings_table.py --write docs/PROTOCOL.md')


def test_method_tables_hold_each_configs_values(tool, rendered):
    methods = parse_methods(rendered['methods'])
    assert sorted(methods) == sorted(pattern for _, pattern in tool.METHODS)
    for pattern, rows in methods.items():
        present = [(key, label) for key, label in tool.BENCHMARKS
                   if osp.isfile(osp.join(REPO, 'configs', pattern.format(key)))]
        assert list(rows) == [label for _, label in present]
        title = next(line for line in rendered['methods'].splitlines() if f'`configs/{pattern.format("<benchmark>")}`' in line)
        missing = [label for key, label in tool.BENCHMARKS if (key, label) not in present]
        assert (f"no {', '.join(missing)} config: its official repository has none" in title) == bool(missing)
        if pattern.split('/')[0] in ('itaclip', 'floss'):  # their repositories' five, and the large vocabularies (ours)
            keys = [key for key, _ in present]
            assert len(keys) == 7 and {'ade847', 'context459'} <= set(keys), pattern
        for key, label in present:
            cfg = Config.fromfile(osp.join(REPO, 'configs', pattern.format(key)))
            model, row = cfg.model, rows[label]
            resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]['scale']
            assert row['short side'] == str(min(resize)) and row['long-side cap'] == str(max(resize)), (pattern, key)
            for name in ('logit_scale', 'prob_thd', 'area_thd'):
                assert row[name] == expected_cell(model[name]), (pattern, key, name)
            crop, stride = model.get('slide_crop'), model.get('slide_stride')
            if crop == 0:
                assert row['windows (crop / stride)'].startswith('whole image'), (pattern, key)
            else:  # None: ViT-B/16's 224 input, stride half of it
                crop = 224 if crop is None else crop
                stride = crop // 2 if stride is None else stride
                assert row['windows (crop / stride)'] == f'{crop} / {stride}', (pattern, key)
            separator = model.get('class_name_separator', ', ')
            with open(model['class_names'], encoding='utf-8') as f:
                lines = f.read().splitlines()
            queries = sum(len(line.split(separator)) for line in lines if line.strip())
            assert row['classes / queries'] == f'{len(lines)} / {queries}', (pattern, key)
            assert row['class_name_separator'] == f'`{separator!r}`'
            assert row['PAMR'] == ('off' if not model.get('pamr_steps') else '10 steps, dilations (8, 16)')
            text = model.get('text') or {}
            if text.get('descriptions'):
                described = text['descriptions']
                assert row['descriptions'].startswith(osp.relpath(described['file'], osp.join(REPO, 'configs',
                                                                                             'class_texts')))
                weight = 'kept apart' if described['weight'] is None else f"weight {described['weight']},"
                assert weight in row['descriptions'], (pattern, key)  # FreeCP: kept apart
            if text.get('template_ranking'):
                ranking = text['template_ranking']['file']
                shipped = osp.isabs(ranking)  # FLOSS's shipped files (configs/class_texts/) or computed ones (data/)
                assert row['template ranking'].startswith(
                    osp.relpath(ranking, osp.join(REPO, 'configs', 'class_texts')) if shipped else ranking), (pattern, key)
                assert ('computed by tools/floss_rankings.py' in row['template ranking']) != shipped, (pattern, key)
                assert f"top {text['template_ranking']['top_n']} by entropy" in row['template ranking']
            for name, value in (model.get('method') or {}).items():
                if name != 'type':
                    assert row[f'method.{name}'] == expected_cell(tuple(value) if isinstance(value, list) else
                                                                value), (pattern, key, name)


def test_dataset_table_holds_each_benchmark(tool, rendered):
    rows = {row['benchmark']: row for row in table_rows(rendered['datasets'].strip().splitlines())}
    for key, label in tool.BENCHMARKS:
        cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', f'{key}.py'))
        sclip_cfg = Config.fromfile(osp.join(REPO, 'configs', f'sclip_{key}.py'))
        with open(sclip_cfg.model.class_names, encoding='utf-8') as f:
            classes = len(f.read().splitlines())
        row = rows[label]
        assert row['size'] == str(cfg.expected_images)
        assert row['reduce_zero_label'] == str(OFFICIAL_REDUCE_ZERO_LABEL[key]), key
        assert row['classes'] == str(classes), key
        assert row['dataset type'] == f'`{cfg.test_dataloader.dataset.type}`'
        assert row['background'] == ('label 0 ignored, k → k−1' if OFFICIAL_REDUCE_ZERO_LABEL[key] else
                                     'class 0' if key in ('voc21', 'context60', 'coco_object') else
                                     'none (65535 ignored)' if key in ('ade847', 'context459') else 'none'), key


def test_check_finds_a_stale_table_and_write_repairs_it(tool, tmp_path, capsys):
    stale = tmp_path / 'PROTOCOL.md'
    shutil.copy(DOC, stale)
    text = stale.read_text(encoding='utf-8')
    stale.write_text(text.replace('| VOC21 | `PascalVOCDataset` |', '| VOC21 | `SomethingElse` |', 1), encoding='utf-8')
    assert tool.main(['datasets', '--check', str(stale)]) == 1
    assert "the 'datasets' table differs" in capsys.readouterr().err
    assert tool.main(['datasets', '--write', str(stale)]) == 0
    assert stale.read_text(encoding='utf-8') == text
    assert tool.main(['datasets', '--check', str(stale)]) == 0


def test_document_without_markers_is_refused(tool, tmp_path):
    bare = tmp_path / 'bare.md'
    bare.write_text('# no tables here\n', encoding='utf-8')
    with pytest.raises(SCLIPError, match="no 'datasets' block"):
        tool.main(['datasets', '--check', str(bare)])
    with pytest.raises(SCLIPError, match='not found'):
        tool.main(['--write', str(tmp_path / 'missing.md')])


def test_help_imports_nothing_heavy():
    code = ('import sys, runpy\n'
            "sys.argv = ['settings_table.py', '--help']\n"
            'try:\n'
            f"    runpy.run_path({osp.join(REPO, 'tools', 'settings_table.py')!r}, run_name='__main__')\n"
            'except SystemExit:\n'
            '    pass\n'
            "print('HEAVY', sorted(m for m in ('torch', 'mmseg', 'mmengine', 'open_clip') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert 'usage: settings_table.py' in result.stdout
    assert 'HEAVY []' in result.stdout, result.stdout + result.stderr
