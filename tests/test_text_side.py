"""The pluggable text side (model.text): descriptions and per-class template sets.

Each embedding is checked against an independent computation with the tiny CLIP's own
``encode_text`` (one prompt list at a time, as the official codes loop); the files are read in
their official formats (ITACLIP's ``label >=text`` lines, FreeCP's Python dict, FLOSS's ranking
JSON); every bad setting is one line naming the file or key; the texts are part of the run's
identity and fingerprint and of the text cache key.
"""
import json
import os.path as osp

import open_clip
import pytest
import torch

from helpers import REPO
from sclip.errors import SCLIPError


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('texts')
    names = folder / 'names.txt'
    names.write_text('background, sky\ncat, kitty\ndog\n')
    lines = folder / 'defs.txt'
    lines.write_text('cat >=a small furry animal.\ndog >=a loyal animal that barks.\n')
    module = folder / 'descriptions.py'
    module.write_text('ANIMALS = {\n  "background": ["nothing in particular"],\n  "sky": ["blue above"],\n'
                      '  "cat": ["A cat has whiskers.", "A cat purrs."],\n  "kitty": ["A kitty is small."],\n'
                      '  "dog": ["A dog has a tail."],\n}\n')

    def ranking(ids_by_class):
        def entries(ids):
            out = [dict(template_id=i, entropy=0.1 * r, pixel_percentage=1.0, rank=r + 1) for r, i in enumerate(ids)]
            out.insert(1, dict(template_id=79, entropy=0.05, pixel_percentage=0.0, rank=0))  # filtered out
            return out
        return dict(model='naclip', dataset='toy', split='train',
                    classes={name: dict(entropy_ranking=entries(ids)) for name, ids in ids_by_class.items()})
    rank = folder / 'ranking.json'
    rank.write_text(json.dumps(ranking({'background': [3, 1, 2], 'sky': [5, 6, 7], 'cat': [0, 10, 20],
                                        'dog': [40, 41, 42]})))
    return dict(folder=folder, names=str(names), lines=str(lines), module=str(module), ranking=str(rank))


def build(checkpoint, names, cache=False, **text):
    from mmseg.registry import MODELS
    import sclip  # noqa: F401  (registers the segmentor)
    cfg = dict(type='SCLIPSegmentor', class_names=names, clip_path=checkpoint, precision='fp32',
               text_cache_dir=cache, text=text or None)
    return MODELS.build(cfg).eval()


def encode(model, prompts):
    """The official loop: f /= |f|; m = mean(f); m /= |m|."""
    with torch.no_grad():
        features = model.text_model.encode_text(open_clip.tokenize(prompts))
    features = features / features.norm(dim=-1, keepdim=True)
    mean = features.mean(dim=0)
    return mean / mean.norm()


def templates():
    from sclip.models.text_classifier import openai_imagenet_templates
    return openai_imagenet_templates()


def test_itaclip_definitions_are_mixed_into_the_names(tiny_checkpoint, files):
    model = build(tiny_checkpoint, files['names'], descriptions=dict(file=files['lines'], weight=0.2, first_class=1))
    queries = ['background', 'sky', 'cat', 'kitty', 'dog']
    definitions = [None, None, 'a small furry animal.', 'a small furry animal.', 'a loyal animal that barks.']
    ours = model.class_embeddings
    for row, (name, definition) in enumerate(zip(queries, definitions)):
        expected = encode(model, [t.format(name) for t in templates()])
        if definition is not None:
            expected = 0.8 * expected + 0.2 * encode(model, [t.format(definition) for t in templates()])
        assert torch.allclose(ours[row], expected, atol=1e-5), name
    assert not torch.allclose(ours[2].norm(), torch.tensor(1.0), atol=1e-4)  # not re-normalised, as ITACLIP


def test_freecp_descriptions_are_kept_apart(tiny_checkpoint, files):
    model = build(tiny_checkpoint, files['names'], descriptions=dict(file=files['module'], templates='none'))
    text = model.text_side()
    assert torch.allclose(text.embeddings[2], encode(model, [t.format('cat') for t in templates()]), atol=1e-5)
    assert torch.allclose(text.descriptions[2], encode(model, ['A cat has whiskers.', 'A cat purrs.']), atol=1e-5)
    assert torch.allclose(text.descriptions[0], encode(model, ['nothing in particular']), atol=1e-5)
    assert text.experts is None


def test_floss_experts_use_each_query_s_ranked_templates(tiny_checkpoint, files):
    model = build(tiny_checkpoint, files['names'],
                  template_ranking=dict(file=files['ranking'], top_n=2, aliases={'kitty': 'cat'}))
    experts = model.text_side().experts
    assert experts.shape[:2] == (5, 5)
    chosen = {0: [3, 1], 1: [5, 6], 2: [0, 10], 3: [0, 10], 4: [40, 41]}  # template 79 has no pixels
    for expert, ids in chosen.items():
        for row, name in enumerate(['background', 'sky', 'cat', 'kitty', 'dog']):
            expected = encode(model, [templates()[i].format(name) for i in ids])
            assert torch.allclose(experts[expert, row], expected, atol=1e-5), (expert, name)


def test_text_cache_holds_every_part(tiny_checkpoint, files, tmp_path):
    spec = dict(descriptions=dict(file=files['module'], templates='none'),
                template_ranking=dict(file=files['ranking'], aliases={'kitty': 'cat'}))
    first = build(tiny_checkpoint, files['names'], cache=str(tmp_path), **spec).text_side()
    written = sorted(p.name for p in (tmp_path / 'text').glob('*.pt'))
    assert any(name.startswith('sets-') for name in written) and len(written) >= 3
    again = build(tiny_checkpoint, files['names'], cache=str(tmp_path), **spec)
    second = again.text_side()
    assert torch.equal(first.descriptions, second.descriptions) and torch.equal(first.experts, second.experts)
    other = build(tiny_checkpoint, files['names'], cache=str(tmp_path),
                  template_ranking=dict(file=files['ranking'], top_n=1, aliases={'kitty': 'cat'}))
    assert other.text_signature() != again.text_signature()


@pytest.mark.parametrize('text,needle', [
    (dict(descriptions=dict(file='/nowhere/defs.txt')), "model.text.descriptions.file='/nowhere/defs.txt' not found"),
    (dict(descriptions=dict(weight=0.1)), 'model.text.descriptions.file is not set'),
    (dict(descriptions=dict(file='LINES', wieght=0.1)), "model.text.descriptions.wieght is not a setting; did you mean 'weight'?"),
    (dict(descriptoins=dict(file='LINES')), "model.text.descriptoins is not a setting; did you mean 'descriptions'?"),
    (dict(descriptions=dict(file='LINES')), 'LINES: 2 description lines for 3 classes'),
    (dict(descriptions=dict(file='LINES', first_class=1, weight=2)), 'model.text.descriptions.weight=2'),
    (dict(descriptions=dict(file='LINES', first_class=1, templates='nope')),
     "model.text.descriptions.templates='nope' is unknown"),
    (dict(descriptions=dict(file='BADLINE', first_class=1)), 'BADLINE: line 2'),
    (dict(descriptions=dict(file='MODULE', first_class=2)), None),
    (dict(descriptions=dict(file='SHORTDICT')), "SHORTDICT: no descriptions for 'kitty'"),
    (dict(descriptions=dict(file='NOTPY')), 'NOTPY: not a Python file of one dict literal'),
    (dict(template_ranking=dict(file='RANKING')), "RANKING: no ranking for 'kitty'"),
    (dict(template_ranking=dict(file='RANKING', top_n=0, aliases={'kitty': 'cat'})), 'top_n=0'),
    (dict(template_ranking=dict(file='LINES')), 'LINES: not a template-ranking JSON'),
])
def test_bad_text_settings_are_one_line(tiny_checkpoint, files, text, needle):
    folder = files['folder']
    (folder / 'badline.txt').write_text('cat >=fine\ndog is a dog\n')
    (folder / 'short.py').write_text('D = {"background": ["x"], "sky": ["y"], "cat": ["z"], "dog": ["w"]}\n')
    (folder / 'notpy.py').write_text('D = {"a": [1 +]}\n')
    paths = dict(LINES=files['lines'], BADLINE=str(folder / 'badline.txt'), MODULE=files['module'],
                 SHORTDICT=str(folder / 'short.py'), NOTPY=str(folder / 'notpy.py'), RANKING=files['ranking'])

    def resolve(value):
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return paths.get(value, value)
    text = resolve(text)
    if needle is None:  # a valid spec: builds
        build(tiny_checkpoint, files['names'], **text)
        return
    for key, path in paths.items():
        needle = needle.replace(key, path)
    with pytest.raises(SCLIPError) as error:
        build(tiny_checkpoint, files['names'], **text)
    message = str(error.value)
    assert needle in message and '\n' not in message


def test_texts_are_part_of_identity_and_fingerprint(files, tmp_path):
    from mmengine.config import Config
    from sclip.identity import run_identity
    config = osp.join(REPO, 'configs/naclip/voc20.py')
    copy = tmp_path / 'copy.txt'
    copy.write_text(open(files['lines']).read())

    def identity(path):
        cfg = Config.fromfile(config)
        cfg.model.text = dict(descriptions=dict(file=path, weight=0.1, first_class=1))
        return run_identity(cfg)
    base = identity(files['lines'])
    assert base['text']['descriptions'] == files['lines'] and base['text']['descriptions_sha256']
    assert identity(str(copy))['fingerprint'] == base['fingerprint']  # same content elsewhere: same run
    copy.write_text('cat >=another text.\ndog >=a loyal animal that barks.\n')
    changed = identity(str(copy))
    assert changed['fingerprint'] != base['fingerprint']
    cfg = Config.fromfile(config)
    assert run_identity(cfg)['fingerprint'] != base['fingerprint']
