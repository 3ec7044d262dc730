"""COCO-Object labels equal SCLIP's official converter (datasets/cvt_coco_object.py), from raw
COCO-Stuff maps and from mmseg's *_labelTrainIds.png; bad inputs give one line and no file."""
import os

import numpy as np
import pytest
from PIL import Image

from helpers import load_tool

# Transcription of the official table (mmseg's coco_stuff164k.py table, which cvt_coco_object.py
# repeats), written as the runs of consecutive raw ids -> train ids it lists.
OFFICIAL_RUNS = [((0, 10), 0), ((12, 24), 11), ((26, 27), 24), ((30, 43), 26), ((45, 64), 40), ((66, 66), 60),
                 ((69, 69), 61), ((71, 81), 62), ((83, 89), 73), ((91, 181), 80)]
OFFICIAL_164K = {raw: first + raw - lo for (lo, hi), first in OFFICIAL_RUNS for raw in range(lo, hi + 1)}
OFFICIAL_164K[255] = 255


def official_object_table():
    """cvt_coco_object.py's post-processing of that table, line by line."""
    table = dict(OFFICIAL_164K)
    for k, v in table.items():
        table[k] = v + 1
        if k > 90:
            table[k] = 0
    return table


def official_convert(mask, table):
    """The official per-id loop: ``mask_copy[mask == clsID] = trID`` on a copy."""
    out = mask.copy()
    for cls_id, tr_id in table.items():
        out[mask == cls_id] = tr_id
    return out


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def read_png(path):
    return np.array(Image.open(path)).tolist()


def convert(root, *extra):
    load_tool('convert_coco_object').main([str(root), '--workers', '1', *extra])


def test_transcription_has_171_classes():
    assert len(OFFICIAL_164K) == 172 and sorted(set(OFFICIAL_164K.values())) == list(range(171)) + [255]


def test_hand_example_from_raw_maps(tmp_path):
    # raw ids: 0 person, 89 toothbrush (last thing), 91 banner (stuff), 255 unlabelled, 12 stop sign, 181 wood
    write_png(tmp_path / 'annotations/val2017/000000000139.png', [[0, 89, 91], [255, 12, 181]])
    convert(tmp_path)
    assert read_png(tmp_path / 'annotations/val2017/000000000139_instanceTrainIds.png') == [[1, 80, 0], [0, 12, 0]]


def test_hand_example_from_label_train_ids(tmp_path):
    # train ids: 0 person, 79 toothbrush, 80 banner, 170 wood, 255 unlabelled, 5 bus
    write_png(tmp_path / 'annotations/val2017/000000000139_labelTrainIds.png', [[0, 79, 80], [170, 255, 5]])
    convert(tmp_path)
    assert read_png(tmp_path / 'annotations/val2017/000000000139_instanceTrainIds.png') == [[1, 80, 0], [0, 0, 6]]


def test_every_value_matches_the_official_converter_both_ways(tmp_path):
    every_value = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = official_convert(every_value, official_object_table())
    assert (expected != 255).all()  # unlabelled becomes background: nothing is ignored any more
    raw_root, stuff_root = tmp_path / 'raw', tmp_path / 'stuff'
    write_png(raw_root / 'annotations/val2017/000000000001.png', every_value)
    convert(raw_root)
    assert read_png(raw_root / 'annotations/val2017/000000000001_instanceTrainIds.png') == expected.tolist()
    # via mmseg's train ids: identical on every id the release uses (the 171 in the table and 255)
    used = np.array(sorted(OFFICIAL_164K), np.uint8)[None]
    write_png(stuff_root / 'annotations/val2017/000000000001_labelTrainIds.png',
              official_convert(used, OFFICIAL_164K))
    convert(stuff_root)
    assert read_png(stuff_root / 'annotations/val2017/000000000001_instanceTrainIds.png') == \
        official_convert(used, official_object_table()).tolist()


def test_rerun_replaces_labels_of_older_versions(tmp_path):
    folder = tmp_path / 'annotations/val2017'
    write_png(folder / '000000000139_labelTrainIds.png', [[255, 3]])
    write_png(folder / '000000000139_instanceTrainIds.png', [[255, 4]])  # old converter kept 255
    convert(tmp_path)
    assert read_png(folder / '000000000139_instanceTrainIds.png') == [[0, 4]]


@pytest.mark.parametrize('workers', ['1', '2'])
def test_corrupt_input_names_the_file_and_writes_nothing(tmp_path, capsys, workers):
    from sclip.cli import main_guard
    folder = tmp_path / 'annotations/val2017'
    for stem in ('000000000001', '000000000002', '000000000003'):
        write_png(folder / f'{stem}.png', np.full((8, 8), 7))
    broken = folder / '000000000002.png'
    broken.write_bytes(broken.read_bytes()[:40])  # truncated mid-file
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('convert_coco_object').main([str(tmp_path), '--workers', workers]))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith('error: ') and str(broken) in err
    assert not (folder / '000000000002_instanceTrainIds.png').exists()
    assert not [n for n in os.listdir(folder) if n.startswith('.')]  # no temporary file left


def test_old_tool_names_a_missing_folder(tmp_path, capsys):
    from sclip.cli import main_guard
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('convert_coco_object').main([str(tmp_path)]))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith('error: ') and len(err.strip().splitlines()) == 1
    assert 'val2017' in err and str(tmp_path) in err
