import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sclip  # noqa: E402,F401  (registers everything; installs the mmcv.ops stand-in)
from helpers import write_openai_checkpoint  # noqa: E402

if os.environ.get('PYTEST_XDIST_WORKER'):
    # pytest.ini runs two workers: one thread each keeps them from fighting over the cores
    import torch  # noqa: E402
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own text-embedding cache, never the user's."""
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(tmp_path_factory.mktemp('cache')))


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory):
    """A random ViT-B/16-shaped (tiny) CLIP in OpenAI's state-dict layout."""
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('weights') / 'tiny-openai.pt'))


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    """A 2-block, 128-wide random CLIP in OpenAI's layout: both sides of the side-by-side tests load it."""
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('weights') / 'tiny.pt'), layers=2, width=128)
