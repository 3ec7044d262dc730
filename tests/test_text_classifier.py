"""Class embeddings: truncated encoding is exact, templates are OpenAI's 80, the cache is keyed."""
import open_clip
import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_clip
from sclip.models import text_classifier as tc


@pytest.fixture(scope='module')
def model():
    return tiny_clip()


def test_truncated_encoding_equals_full_length(model):
    tokens = open_clip.tokenize(['a photo of a cat.', 'a very long prompt about a small dog on grass.'])
    with torch.no_grad():
        assert torch.allclose(tc.encode_prompts(model, tokens, truncate=True), model.encode_text(tokens),
                              atol=1e-5)


def test_templates_are_openai_imagenet_80():
    templates = tc.resolve_templates('openai_imagenet')
    assert len(templates) == 80 and templates[0] == 'a bad photo of a {}.'


def test_embeddings_match_independent_computation(model):
    names = ['cat', 'dining table']
    templates = tc.resolve_templates('openai_imagenet')
    ours = tc.build_class_embeddings(model, open_clip.tokenize, names, templates, 'cpu', batch_size=37)
    with torch.no_grad():
        for i, name in enumerate(names):
            feats = model.encode_text(open_clip.tokenize([t.format(name) for t in templates]))
            feats = feats / feats.norm(dim=-1, keepdim=True)
            mean = feats.mean(0)
            assert torch.allclose(ours[i], mean / mean.norm(), atol=1e-5)


def test_cache_is_reused_and_keyed(model, tmp_path, monkeypatch):
    calls = []
    real = tc.build_class_embeddings

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)
    monkeypatch.setattr(tc, 'build_class_embeddings', counting)
    templates = ['a photo of a {}.']
    first = tc.load_or_build(model, open_clip.tokenize, ['cat'], templates, 'cpu', 'm', str(tmp_path))
    second = tc.load_or_build(model, open_clip.tokenize, ['cat'], templates, 'cpu', 'm', str(tmp_path))
    assert len(calls) == 1 and torch.equal(first, second)
    tc.load_or_build(model, open_clip.tokenize, ['dog'], templates, 'cpu', 'm', str(tmp_path))
    tc.load_or_build(model, open_clip.tokenize, ['cat'], ['a {}.'], 'cpu', 'm', str(tmp_path))
    tc.load_or_build(model, open_clip.tokenize, ['cat'], templates, 'cpu', 'other-model', str(tmp_path))
    other_weights = tiny_clip(seed=1)
    changed = tc.load_or_build(other_weights, open_clip.tokenize, ['cat'], templates, 'cpu', 'm', str(tmp_path))
    assert len(calls) == 5 and not torch.allclose(changed, first)
    assert len(list((tmp_path / 'text').glob('*.pt'))) == 5
    assert not list((tmp_path / 'text').glob('*.tmp'))


def test_damaged_cache_file_is_rebuilt(model, tmp_path):
    templates = ['a photo of a {}.']
    first = tc.load_or_build(model, open_clip.tokenize, ['cat'], templates, 'cpu', 'm', str(tmp_path))
    (cache_file,) = (tmp_path / 'text').glob('*.pt')
    cache_file.write_bytes(b'garbage')
    again = tc.load_or_build(model, open_clip.tokenize, ['cat'], templates, 'cpu', 'm', str(tmp_path))
    assert torch.allclose(first, again)


def test_bad_templates_are_one_line_errors():
    from sclip.errors import SCLIPError
    with pytest.raises(SCLIPError, match='model.templates'):
        tc.resolve_templates(['no placeholder'])
    with pytest.raises(SCLIPError, match='model.templates'):
        tc.resolve_templates('imagenet21k')
