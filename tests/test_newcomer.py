"""What a newcomer hits first (issue 24): demo class syntax, the import trap, the README's API
example, configs from another folder, the shell launchers' --help, results found by identity,
sweeps reusing cells by fingerprint, folders and locks, and the progress a long run prints."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, assert_one_line, load_tool, write_image


def run_demo(capsys, *args):
    from sclip.cli import main_guard
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('demo').main(list(args)))
    return exit_info.value.code, capsys.readouterr().err


# --- demo -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('classes,example', [('cat, dog, grass', '--classes "cat; dog; grass"'),
                                             ('cat', '--classes "cat; background"')])
def test_demo_with_a_single_class_is_one_line_showing_the_semicolon_form(capsys, tmp_path, tiny_checkpoint,
                                                                         classes, example):
    image = str(tmp_path / 'photo.jpg')
    write_image(image, (50, 40), seed=5)
    out = str(tmp_path / 'overlay.png')
    code, err = run_demo(capsys, image, '--classes', classes, '--out', out,
                         '--cfg-options', f'model.pretrained={tiny_checkpoint}')
    assert_one_line(code, err, 'one class', example, '";"')
    assert not osp.exists(out)


def test_readme_demo_line_shows_both_separators():
    readme = open(osp.join(REPO, 'README.md')).read()
    line = [row for row in readme.splitlines() if row.startswith('| `tools/demo.py`')][0]
    assert '"cat; dog; grass, lawn"' in line and '`;` between classes' in line and '`,` between synonyms' in line


def test_demo_label_map_creates_its_folder(tmp_path, tiny_checkpoint, capsys):
    image = str(tmp_path / 'photo.jpg')
    write_image(image, (50, 40), seed=5)
    label_map = tmp_path / 'new' / 'deeper' / 'labels.png'
    load_tool('demo').main([image, '--classes', 'cat; dog', '--out', str(tmp_path / 'overlay.png'),
                            '--label-map', str(label_map), '--cfg-options', f'model.pretrained={tiny_checkpoint}'])
    labels = np.array(Image.open(label_map))
    assert labels.shape == (40, 50) and set(np.unique(labels)) <= {0, 1}
    assert 'segmenting with 2 classes' in capsys.readouterr().out
