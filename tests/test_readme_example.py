"""The README's "Adding a method" example runs as written."""
import os.path as osp
import re

import torch

from helpers import REPO, write_openai_checkpoint


def readme_method_code() -> str:
    text = open(osp.join(REPO, 'README.md')).read()
    section = text.split('## Adding a method', 1)[1]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_readme_method_example_registers_and_runs(tmp_path):
    from mmseg.registry import MODELS
    from sclip.models.methods import METHODS
    from sclip.runner import load_config
    namespace = {}
    if 'my_method' not in METHODS:
        exec(readme_method_code(), namespace)  # noqa: S102 - our own README
    weights = write_openai_checkpoint(str(tmp_path / 'w12.pt'), width=64, layers=12)  # it reads block 8
    cfg = load_config(osp.join(REPO, 'configs', 'scclip', 'voc21.py'), {'model.clip_path': weights})
    cfg.model.method = dict(type='my_method', alpha=0.3)
    model = MODELS.build(cfg.model).eval()
    assert model.backbone.method.alpha == 0.3
    with torch.no_grad():
        out = model.predict([torch.randn(3, 224, 260)])
    assert out[0].pred_sem_seg.data.shape == (1, 224, 260)


def readme_api_code() -> str:
    text = open(osp.join(REPO, 'README.md')).read()
    section = text.split('Python API', 1)[1]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_readme_python_api_example_runs_on_this_machine(tmp_path, monkeypatch, tiny_checkpoint):
    """The example picks its device as the tools do (a hard-coded 'cuda' raises on a CPU machine)."""
    from helpers import write_image
    code = readme_api_code()
    assert "device='cuda'" not in code and 'torch.cuda.is_available()' in code
    assert '/data/ViT-B-16.pt' in code and "'demo.jpg'" in code
    write_image(str(tmp_path / 'demo.jpg'), (90, 70), seed=3)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(code.replace('/data/ViT-B-16.pt', tiny_checkpoint)  # noqa: S102 - our own README
         .replace("'configs/", repr(osp.join(REPO, 'configs', ''))[:-1]), namespace)
    assert namespace['device'] == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert namespace['result'].pred_sem_seg.data.shape == (1, 70, 90)
