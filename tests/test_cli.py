"""Every tool: --help at once (no torch/mmseg import before parsing), every option explained."""
import argparse
import glob
import os.path as osp
import runpy
import subprocess
import sys

import pytest

from helpers import REPO

TOOLS = sorted(glob.glob(osp.join(REPO, 'tools', '*.py')))


def test_every_tool_is_covered():
    names = {osp.basename(t) for t in TOOLS}
    assert {'test.py', 'sweep.py', 'paper_table.py', 'benchmark.py', 'report.py', 'prepare_data.py',
            'check_data.py', 'demo.py', 'visualize_attention.py', 'web_demo.py'} <= names


@pytest.mark.parametrize('tool', TOOLS, ids=osp.basename)
def test_help_is_instant_and_imports_nothing_heavy(tool):
    """In a fresh interpreter, --help returns without importing torch, mmseg, mmengine or open_clip."""
    code = (f'import runpy, sys; sys.argv = [{tool!r}, "--help"]\n'
            'try:\n    runpy.run_path(sys.argv[0], run_name="__main__")\nexcept SystemExit:\n    pass\n'
            'print(sorted(m for m in ("torch", "mmseg", "mmengine", "open_clip") if m in sys.modules))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == '[]'
    assert 'usage:' in result.stdout


@pytest.mark.parametrize('tool', TOOLS, ids=osp.basename)
def test_every_option_has_a_help_text(tool, monkeypatch):
    seen = []
    original = argparse._ActionsContainer.add_argument  # parsers and argument groups

    def recording(self, *args, **kwargs):
        action = original(self, *args, **kwargs)
        seen.append(action)
        return action
    monkeypatch.setattr(argparse._ActionsContainer, 'add_argument', recording)
    monkeypatch.setattr(sys, 'argv', [tool, '--help'])
    with pytest.raises(SystemExit):
        runpy.run_path(tool, run_name='__main__')
    shown = [a for a in seen if a.help != argparse.SUPPRESS and '--help' not in a.option_strings]
    options = [a for a in shown if a.option_strings]
    assert options, 'no options recorded'
    missing = [(a.option_strings or [a.dest])[0] for a in shown if not a.help]
    assert not missing, f'{osp.basename(tool)}: arguments without help: {missing}'
    silent = [a.option_strings[0] for a in options
              if a.default not in (None, False, [], argparse.SUPPRESS) and 'default' not in a.help
              and not (a.choices and len(a.choices) == 1)]
    assert not silent, f'{osp.basename(tool)}: defaults not shown in the help of {silent}'


@pytest.mark.parametrize('tool', TOOLS, ids=osp.basename)
def test_help_has_no_noise(tool):
    result = subprocess.run([sys.executable, tool, '--help'], capture_output=True, text=True, timeout=60, cwd=REPO)
    text = ' '.join(result.stdout.split())
    assert '(default: None)' not in text and '(default: [])' not in text and '(default: False)' not in text
    for chunk in text.split('--')[1:]:  # no option says its default twice
        assert chunk.count('(default:') <= 1, chunk
