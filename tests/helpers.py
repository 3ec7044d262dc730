"""Test helpers: the tools in-process and their one-line errors; the tiny random CLIP checkpoints
and synthetic benchmark datasets live in sclip/synthetic.py (tools/try_it.py uses them too)."""
from __future__ import annotations

import json
import os.path as osp

from sclip.synthetic import (BENCHMARKS, LAYOUTS, SIZES, STEMS, make_dataset, tiny_clip,  # noqa: F401 (re-exported)
                             write_image, write_label, write_openai_checkpoint)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module, to call its ``main(argv)`` in-process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(config, data_root, weights, work_dir, *extra):
    tool = load_tool('test')
    tool.main([osp.join(REPO, config), '--work-dir', work_dir, *extra, '--cfg-options',
               f'model.clip_path={weights}', f'test_dataloader.dataset.data_root={data_root}',
               'test_dataloader.num_workers=0'])
    with open(osp.join(work_dir, 'metrics.json')) as f:
        return json.load(f)


# --- tools/test.py in-process, and its one-line errors ---------------------------------------

def run_main(capsys, *args):
    """tools/test.py in-process through its guard; returns (exit code, stderr)."""
    import pytest
    from sclip.cli import main_guard
    tool = load_tool('test')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(list(args)))
    return exit_info.value.code, capsys.readouterr().err


def assert_one_line(code, err, *needles) -> str:
    """Exit code 2 and exactly one ``error:`` line holding every needle; returns the line."""
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def options(root, weights, *more):
    """``--cfg-options`` pointing a config at a dataset root and a checkpoint."""
    return ['--cfg-options', f'test_dataloader.dataset.data_root={root}', f'model.clip_path={weights}',
            'test_dataloader.num_workers=0', *more]
