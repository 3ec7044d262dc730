"""The pluggable text side: per-class descriptions and per-class template sets (``model.text``).

Why: the class embeddings were always "each name in the 80 ImageNet templates". Later methods
change that text side with files their repositories ship:

- **descriptions** (ITACLIP, FreeCP): per class a list of LLM-written texts. ITACLIP puts each
  class's definition (or synonym) into the 80 templates and mixes its embedding into the name's,
  ``(1 - weight) · name + weight · description`` (no re-normalisation; the classes before
  ``first_class``, its background, keep the name alone). FreeCP encodes its descriptions as they
  are (``templates='none'``) and keeps them apart (``weight=None``) for a method to use.
- **template rankings** (FLOSS): per class the templates ranked by an unsupervised score; each
  class's ``top_n`` templates make one "expert" classifier of every class.

``model.text = dict(descriptions=dict(file=..., templates=..., weight=..., first_class=...),
template_ranking=dict(file=..., top_n=..., aliases={query name: ranking key}, keys='query'|'class'))``. The files are
read in their official formats (copied unchanged into configs/): ITACLIP's ``label >=text`` lines
(one a class, in class order from ``first_class`` on), FreeCP's Python module holding one dict
literal (read with ``ast.literal_eval``, never executed) or the same dict as JSON, keyed by name;
FLOSS's ranking JSON, keyed by query name (its shipped files; ``keys='query'``) or by class as
``tools/floss_rankings.py`` writes them (``keys='class'``: each class's names joined by ',', spaces
removed, sclip/floss_ranking.py). A missing or malformed file is one line naming the file and the key.
"""
from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ..class_names import ClassNames, class_key
from ..config_check import closest, unknown_key_error
from ..errors import SCLIPError

DESCRIPTION_KEYS = ('file', 'templates', 'weight', 'first_class')
RANKING_KEYS = ('file', 'top_n', 'aliases', 'score', 'keys', 'unranked')
RANKING_LOOKUPS = ('query', 'class')
# A class that no template ever predicted on the ranked images: FLOSS stops ('error', official); ours for
# the computed rankings of new benchmarks ('all_templates'): its expert is the 80-template classifier.
UNRANKED = ('error', 'all_templates')
TEXT_KEYS = ('descriptions', 'template_ranking')


@dataclass(frozen=True)
class Descriptions:
    """Per query the texts describing its class (``None``: the query has none)."""
    file: str
    texts: List[Optional[List[str]]]
    templates: object  # a template-set name or a list of format strings
    weight: Optional[float]


@dataclass(frozen=True)
class TemplateRanking:
    """Per query the ids (into the 80 ImageNet templates) of its expert's templates."""
    file: str
    template_ids: List[List[int]]


def _settings(spec, key: str, allowed: Sequence[str]) -> dict:
    if not isinstance(spec, dict):
        raise SCLIPError(f'model.text.{key} must be a dict ({", ".join(allowed)}), not {spec!r}.')
    for name in spec:
        if name not in allowed:
            raise unknown_key_error(f'model.text.{key}', name, allowed)
    if not spec.get('file'):
        raise SCLIPError(f'model.text.{key}.file is not set; give the file of the official texts '
                         '(see configs/class_texts/).')
    path = os.path.expanduser(str(spec['file']))
    if not os.path.isfile(path):
        raise SCLIPError(f'model.text.{key}.file={path!r} not found; copy the official file there or fix the path.')
    return dict(spec, file=path)


def parse_text_spec(text: Optional[dict]) -> dict:
    """``model.text`` checked for its keys (the files are read later, against the class names)."""
    if text is None:
        return {}
    if not isinstance(text, dict):
        raise SCLIPError(f'model.text must be a dict with {" and/or ".join(TEXT_KEYS)}, not {text!r}.')
    for key in text:
        if key not in TEXT_KEYS:
            raise unknown_key_error('model.text', key, TEXT_KEYS)
    return {key: value for key, value in text.items() if value is not None}


def _literal_dict(path: str) -> dict:
    """The one dict literal a Python module assigns (FreeCP's prompts/vicuna13b/*.py)."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        values = [ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)]
    except (SyntaxError, ValueError) as error:
        raise SCLIPError(f'{path}: not a Python file of one dict literal ({error}).') from None
    if len(values) != 1:
        raise SCLIPError(f'{path}: expected one dict assignment (name -> list of texts), found {len(values)}.')
    return values[0]


def _keyed_texts(path: str) -> Dict[str, List[str]]:
    if path.endswith('.py'):
        table = _literal_dict(path)
    else:
        try:
            with open(path, encoding='utf-8') as f:
                table = json.load(f)
        except ValueError as error:
            raise SCLIPError(f'{path}: not valid JSON ({error}).') from None
    if not isinstance(table, dict):
        raise SCLIPError(f'{path}: expected a dict of name -> list of texts.')
    for key, value in table.items():
        if isinstance(value, str):
            value = table[key] = [value]
        if not isinstance(value, list) or not value or not all(isinstance(t, str) and t for t in value):
            raise SCLIPError(f'{path}: key {key!r} must hold a non-empty list of texts.')
    return table


def _line_texts(path: str, names: ClassNames, first_class: int) -> List[List[str]]:
    """ITACLIP's ``label >=text`` lines, one per class from ``first_class`` on (official
    ``get_aux_text``: the text is what follows the first ``>=``, up to a second one)."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    expected = names.num_classes - first_class
    if len(lines) != expected:
        raise SCLIPError(f'{path}: {len(lines)} description lines for {expected} classes '
                         f'({names.path}, from model.text.descriptions.first_class={first_class}); one line a class.')
    texts = []
    for number, line in enumerate(lines, start=1):
        if '>=' not in line:
            raise SCLIPError(f'{path}: line {number} ({line!r}) has no ">="; write "label >=text".')
        texts.append([line.split('>=')[1]])
    return texts


def load_descriptions(spec: dict, names: ClassNames) -> Descriptions:
    """``model.text.descriptions`` read against the class names: per query its texts."""
    spec = _settings(spec, 'descriptions', DESCRIPTION_KEYS)
    path = spec['file']
    first_class = int(spec.get('first_class', 0))
    if not 0 <= first_class < names.num_classes:
        raise SCLIPError(f'model.text.descriptions.first_class={first_class} is outside the '
                         f'{names.num_classes} classes of {names.path}.')
    weight = spec.get('weight')
    if weight is not None and not (isinstance(weight, (int, float)) and 0 <= weight <= 1):
        raise SCLIPError(f'model.text.descriptions.weight={weight!r} must be None (kept apart) or in [0, 1].')
    per_query: List[Optional[List[str]]] = []
    if path.endswith('.txt'):
        per_class = _line_texts(path, names, first_class)
        for index, _ in zip(names.query_class, names.queries):
            per_query.append(per_class[index - first_class] if index >= first_class else None)
    else:
        table = _keyed_texts(path)
        for index, name in zip(names.query_class, names.queries):
            if index < first_class:
                per_query.append(None)
            elif name not in table:
                raise SCLIPError(f'{path}: no descriptions for {name!r}{closest(name, table)} '
                                 f'(a name of {names.path}).')
            else:
                per_query.append(list(table[name]))
    return Descriptions(file=path, texts=per_query, templates=spec.get('templates', 'openai_imagenet'),
                        weight=None if weight is None else float(weight))


def load_template_ranking(spec: dict, names: ClassNames, num_templates: int) -> TemplateRanking:
    """``model.text.template_ranking`` read against the class names (FLOSS's
    ``_load_template_rankings``: per class the ``top_n`` best-ranked templates among those whose
    ``pixel_percentage`` is above 0). ``keys='query'``: each query name is a key (or maps to one by
    ``aliases``); ``keys='class'``: every name of a class takes its class's ranking. A class without
    such a template is FLOSS's error (``unranked='error'``), or keeps all templates
    (``unranked='all_templates'``, ours: large vocabularies have classes no template predicts on the
    ranked images, and FLOSS would stop on them)."""
    spec = _settings(spec, 'template_ranking', RANKING_KEYS)
    path = spec['file']
    top_n = spec.get('top_n', 4)
    if not isinstance(top_n, int) or top_n < 1:
        raise SCLIPError(f'model.text.template_ranking.top_n={top_n!r} must be a positive integer.')
    aliases = dict(spec.get('aliases') or {})
    lookup = spec.get('keys', 'query')
    if lookup not in RANKING_LOOKUPS:
        raise SCLIPError(f"model.text.template_ranking.keys={lookup!r} must be 'query' (a key per name, FLOSS's "
                         "shipped files) or 'class' (a key per class, tools/floss_rankings.py's files).")
    if lookup == 'class' and aliases:
        raise SCLIPError("model.text.template_ranking.aliases map query names; with keys='class' every name "
                         'takes its class\'s key: remove the aliases.')
    unranked = spec.get('unranked', 'error')
    if unranked not in UNRANKED:
        raise SCLIPError(f"model.text.template_ranking.unranked={unranked!r} must be 'error' (FLOSS's) or "
                         "'all_templates' (a class no template predicted keeps the 80-template classifier).")
    field = f"{spec.get('score', 'entropy')}_ranking"
    try:
        with open(path, encoding='utf-8') as f:
            classes = json.load(f)['classes']
    except (ValueError, KeyError, TypeError) as error:
        raise SCLIPError(f'{path}: not a template-ranking JSON with a "classes" table ({error}).') from None
    if lookup == 'class':
        keys = [class_key(names.classes[index]) for index in names.query_class]
    else:
        keys = [aliases.get(name, name) for name in names.queries]
    ids = []
    for key in keys:
        if key not in classes:
            fix = ('rank this class file with tools/floss_rankings.py' if lookup == 'class'
                   else 'map it with model.text.template_ranking.aliases')
            raise SCLIPError(f'{path}: no ranking for {key!r}{closest(key, classes)} (a name of {names.path}); {fix}.')
        try:
            ranked = [int(entry['template_id']) for entry in classes[key][field]
                      if entry['pixel_percentage'] > 0.0][:top_n]
        except (KeyError, TypeError) as error:
            raise SCLIPError(f'{path}: class {key!r} has no valid {field!r} list ({error}).') from None
        if not ranked and unranked == 'all_templates':
            ranked = list(range(num_templates))
        elif not ranked:
            raise SCLIPError(f'{path}: class {key!r} has no template with pixel_percentage > 0 (no template predicted '
                             "it on the ranked images); model.text.template_ranking.unranked='all_templates' gives it "
                             'the 80-template classifier.')
        bad = [i for i in ranked if not 0 <= i < num_templates]
        if bad:
            raise SCLIPError(f'{path}: class {key!r} ranks template {bad[0]}, outside the {num_templates} templates.')
        ids.append(ranked)
    return TemplateRanking(file=path, template_ids=ids)
