"""COCO-Object conversion: things shift by one, stuff becomes background, 255 stays."""
import subprocess
import sys

import numpy as np
from PIL import Image

from helpers import REPO


def test_converter_tool(tmp_path):
    folder = tmp_path / 'coco' / 'annotations' / 'val2017'
    folder.mkdir(parents=True)
    label = np.array([[0, 79, 80], [170, 255, 5]], np.uint8)
    Image.fromarray(label).save(folder / '000000000139_labelTrainIds.png')
    result = subprocess.run([sys.executable, 'tools/convert_coco_object.py', str(tmp_path / 'coco'),
                             '--workers', '1'], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = np.array(Image.open(folder / '000000000139_instanceTrainIds.png'))
    assert out.tolist() == [[1, 80, 0], [0, 255, 6]]


def test_converter_names_a_missing_folder(tmp_path):
    result = subprocess.run([sys.executable, 'tools/convert_coco_object.py', str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and 'annotations/val2017' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
