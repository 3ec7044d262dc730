"""Print the datasets and the per-benchmark settings of every method as markdown tables.

    python tools/settings_table.py [datasets|methods|all] [--write DOC | --check DOC]

The tables of docs/PROTOCOL.md are this tool's output, generated from the configs (and the
defaults of the segmentor, the methods and mmseg's datasets, for keys a config leaves out),
so the document never drifts from what a run uses. ``--write DOC`` replaces each table block
of DOC (between ``<!-- settings_table.py NAME: begin -->`` and ``... NAME: end -->``) with
the current output; ``--check DOC`` exits 1 when a block differs (tests run it).

Per method, settings that are the same on every benchmark are listed once above its table;
the table holds those that vary.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')
BLOCKS = ('datasets', 'methods')
BENCHMARKS = [('voc21', 'VOC21'), ('voc20', 'VOC20'), ('context60', 'Context60'), ('context59', 'Context59'),
              ('coco_object', 'COCO-Object'), ('coco_stuff164k', 'COCO-Stuff164k'),
              ('coco_stuff10k', 'COCO-Stuff10k'), ('cityscapes', 'Cityscapes'), ('ade20k', 'ADE20k'),
              ('ade847', 'ADE-847'), ('context459', 'Context-459')]
# (title, config pattern under configs/)
METHODS = [('SCLIP', 'sclip_{}.py'), ('ClearCLIP', 'clearclip/{}.py'), ('NACLIP', 'naclip/{}.py'),
           ('NACLIP + PAMR', 'naclip_pamr/{}.py'), ('SC-CLIP', 'scclip/{}.py'), ('ResCLIP', 'resclip/{}.py'),
           ('ProxyCLIP', 'proxyclip/{}.py'), ('GEM', 'gem/{}.py'), ('FSA', 'fsa/{}.py'), ('SFP', 'sfp/{}.py'),
           ('ITACLIP', 'itaclip/{}.py'), ('NACLIP + FLOSS', 'floss/{}.py'), ('Trident', 'trident/{}.py'),
           ('FreeCP', 'freecp/{}.py'), ('CorrCLIP', 'corrclip/{}.py'),
           ('CASS', 'cass/{}.py')]
Row = Dict[str, str]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Markdown tables of the datasets and of every method\'s '
                                                 'per-benchmark settings, from the configs.')
    parser.add_argument('block', nargs='?', default='all', choices=BLOCKS + ('all',),
                        help='which table(s) to print (default: all)')
    action = parser.add_mutually_exclusive_group()
    action.add_argument('--write', metavar='DOC', help='replace the table blocks of DOC with the output')
    action.add_argument('--check', metavar='DOC', help='exit 1 if a table block of DOC differs from the output')
    return parser.parse_args(argv)


# --- formatting ---------------------------------------------------------------------------

def cell(value) -> str:
    """A config value as a table cell: None as a dash, sequences in parentheses."""
    if value is None:
        return '—'
    if isinstance(value, (list, tuple)):
        return '(' + ', '.join(cell(v) for v in value) + ')'
    if isinstance(value, str):
        return f'`{value!r}`' if value != value.strip() or not value or ',' in value or ';' in value else value
    return str(value)


def markdown_table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return lines + ['| ' + ' | '.join(row) + ' |' for row in rows]


# --- reading configs ----------------------------------------------------------------------

def load(relative: str):
    from mmengine.config import Config
    return Config.fromfile(osp.join(CONFIGS, relative))


def resize_of(cfg) -> Tuple[int, int]:
    """(short side, long-side cap) of the test pipeline's keep-ratio Resize."""
    for transform in cfg.test_dataloader.dataset.pipeline:
        if transform['type'] == 'Resize':
            scale = transform['scale']
            return min(scale), max(scale)
    raise ValueError('test pipeline has no Resize')


def segmentor_defaults() -> dict:
    import inspect

    from sclip.models.segmentor import SCLIPSegmentor
    return {name: p.default for name, p in inspect.signature(SCLIPSegmentor.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def native_input(arch: str) -> int:
    """The input size of an open_clip model, which ``slide_crop=None`` stands for."""
    import open_clip
    size = open_clip.get_model_config(arch)['vision_cfg']['image_size']
    return size if isinstance(size, int) else size[0]


def class_file(path: str) -> str:
    """The class-name file relative to configs/class_names/."""
    return osp.relpath(osp.normpath(path), osp.join(CONFIGS, 'class_names')).replace(os.sep, '/')


def class_text(path: str) -> str:
    """A text file of ``model.text`` relative to configs/class_texts/ (a path relative to the
    working directory, such as a computed ranking under data/, as the config gives it)."""
    if not osp.isabs(path):
        return path
    return osp.relpath(osp.normpath(path), osp.join(CONFIGS, 'class_texts')).replace(os.sep, '/')


def text_settings(model: dict) -> Row:
    """``model.text``: descriptions (file, weight, templates, first class) and template rankings."""
    text = model.get('text') or {}
    row = {}
    described = text.get('descriptions')
    if described:
        weight = described.get('weight')
        row['descriptions'] = (f"{class_text(described['file'])} ("
                               + (f'mixed with weight {weight}' if weight is not None else 'kept apart')
                               + f", templates {described.get('templates', 'openai_imagenet')}"
                               + f", from class {described.get('first_class', 0)})")
    ranking = text.get('template_ranking')
    if ranking:
        row['template ranking'] = (f"{class_text(ranking['file'])} (top {ranking.get('top_n', 4)} by "
                                   f"{ranking.get('score', 'entropy')}"
                                   + (f", {len(ranking['aliases'])} aliases" if ranking.get('aliases') else '')
                                   + (', keyed by class, computed by tools/floss_rankings.py'
                                      if ranking.get('keys') == 'class' else '') + ')')
    if model.get('label_closing'):
        row['label closing'] = f"{model['label_closing']}×{model['label_closing']}"
    return row


def method_settings(model: dict) -> Dict[str, object]:
    """The effective method settings: the config's, completed by the method's defaults."""
    import inspect

    from sclip.models.attention import get_attention
    from sclip.models.methods import METHODS as REGISTRY
    from sclip.models.methods.base import method_arguments
    from sclip.models.segmentor import SCLIPSegmentor
    spec = SCLIPSegmentor._method_spec(model.get('method'), model.get('attention'),
                                       model.get('num_modified_blocks'), model.get('last_block_residual'),
                                       model.get('last_block_mlp'))
    name = spec.pop('type')
    settings = {key: p.default for key, p in method_arguments(REGISTRY[name]).items()}
    settings.update(spec)
    if name == 'attention':
        variant, kwargs = get_attention(settings.pop('attention') or dict(type='csa'))
        defaults = {k: p.default for k, p in inspect.signature(variant.weights).parameters.items() if k != 't'}
        defaults.update(kwargs)
        arguments = ', '.join(f'{k}={cell(v)}' for k, v in defaults.items())
        out = {'attention': variant.name + (f' ({arguments})' if arguments else '')}
        out.update(settings)
        return out
    return {'method': name, **{f'method.{key}': value for key, value in settings.items()}}


def method_row(cfg, defaults: dict) -> Row:
    from sclip.class_names import load_class_names
    model = {**defaults, **cfg.model}  # what SCLIPSegmentor receives
    names = load_class_names(model['class_names'], model['class_name_separator'])
    short, cap = resize_of(cfg)
    crop = model['slide_crop']
    if crop == 0:
        windows = f"whole image ({model['whole_image_upsample'].replace('_', ' ')})"
    else:
        crop = native_input(model['arch']) if crop is None else crop
        stride = max(crop // 2, 1) if model['slide_stride'] is None else model['slide_stride']
        windows = f'{crop} / {stride}'
    pamr = model['pamr_steps']
    row = {
        'short side': str(short),
        'long-side cap': str(cap),
        'windows (crop / stride)': windows,
        'slide_pad': f"×{model['slide_pad']}" if model['slide_pad'] else 'none',
        'logit_scale': cell(model['logit_scale']),
        'prob_thd': cell(model['prob_thd']),
        'area_thd': cell(model['area_thd']),
        'class_names': class_file(model['class_names']),
        'classes / queries': f'{names.num_classes} / {len(names.queries)}',
        'class_name_separator': f"`{model['class_name_separator']!r}`",
        'templates': cell(model['templates']),
        'arch, clip_path': f"{model['arch']}, {model['clip_path']}",
        'precision': cell(model['precision']),
        'PAMR': f"{pamr} steps, dilations {cell(tuple(model['pamr_dilations']))}" if pamr else 'off',
    }
    row.update({key: cell(value) for key, value in method_settings(model).items()})
    row.update(text_settings(model))
    if model.get('vfm'):
        vfm = model['vfm']
        row['vfm'] = f"{vfm['type']} ({vfm.get('checkpoint') or 'official weights'})"
    return row


def method_block(title: str, pattern: str, defaults: dict) -> List[str]:
    """A method's table; benchmarks without a config (its official repository has none) are named
    in the title."""
    present = [(key, label) for key, label in BENCHMARKS if osp.isfile(osp.join(CONFIGS, pattern.format(key)))]
    rows = {label: method_row(load(pattern.format(key)), defaults) for key, label in present}
    missing = [label for key, label in BENCHMARKS if (key, label) not in present]
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    for row in rows.values():  # a setting some configs lack (ours: FreeCP/ITACLIP without LLM texts)
        for c in columns:
            row.setdefault(c, '—')
    constant = [c for c in columns if len({r[c] for r in rows.values()}) == 1]
    varying = [c for c in columns if c not in constant]
    first = next(iter(rows.values()))
    note = f"; no {', '.join(missing)} config: its official repository has none" if missing else ''
    lines = [f"#### {title} (`configs/{pattern.format('<benchmark>')}`{note})", '',
             'Every benchmark: ' + '; '.join(f'{c}: {first[c]}' for c in constant) + '.', '']
    if missing:
        lines[-1:-1] = ['', 'No config (the official repository has none, and we invent no settings): '
                        + ', '.join(missing) + '.']
    lines += markdown_table(['benchmark'] + varying, [[label] + [row[c] for c in varying]
                                                      for label, row in rows.items()])
    return lines


def methods_block() -> List[str]:
    defaults = segmentor_defaults()
    lines: List[str] = []
    for title, pattern in METHODS:
        lines += method_block(title, pattern, defaults) + ['']
    return lines[:-1]


# --- datasets -----------------------------------------------------------------------------

def dataset_default(cls, key: str):
    """A dataset constructor argument's default, looked up along the class hierarchy."""
    import inspect
    for klass in cls.__mro__:
        parameters = inspect.signature(klass.__init__).parameters
        if key in parameters and parameters[key].default is not inspect.Parameter.empty:
            return parameters[key].default
    raise KeyError(key)


def dataset_row(key: str, label: str) -> List[str]:
    import sclip  # noqa: F401  (registers our datasets)
    from mmseg.registry import DATASETS
    cfg = load(f'_base_/datasets/{key}.py')
    dataset = cfg.test_dataloader.dataset
    cls = DATASETS.get(dataset.type)
    setting = {k: dataset.get(k, dataset_default(cls, k)) for k in ('img_suffix', 'seg_map_suffix',
                                                                   'reduce_zero_label')}
    classes = cls.METAINFO['classes']
    ignored = cls.METAINFO.get('ignore_index')
    if setting['reduce_zero_label']:
        background = 'label 0 ignored, k → k−1'
    elif ignored is not None:
        background = f'none ({ignored} ignored)'
    elif classes[0] == 'background':
        background = 'class 0'
    else:
        background = 'none'
    split = f"`{dataset.ann_file}`" if dataset.get('ann_file') else 'every image of the folder'
    prefix = dataset.data_prefix
    return [label, f'`{dataset.type}`', f'`{dataset.data_root}`', split, str(cfg.expected_images),
            f"`{prefix['img_path']}/…{setting['img_suffix']}`",
            f"`{prefix['seg_map_path']}/…{setting['seg_map_suffix']}`",
            str(setting['reduce_zero_label']), str(len(classes)), background]


def datasets_block() -> List[str]:
    header = ['benchmark', 'dataset type', 'data_root', 'split', 'size', 'images (img_path)',
              'labels (seg_map_path)', 'reduce_zero_label', 'classes', 'background']
    return markdown_table(header, [dataset_row(key, label) for key, label in BENCHMARKS])


# --- the document -------------------------------------------------------------------------

def render(block: str) -> str:
    """A block's text as it stands between its markers (blank lines around the tables)."""
    return '\n' + '\n'.join(datasets_block() if block == 'datasets' else methods_block()) + '\n\n'


def markers(block: str) -> Tuple[str, str]:
    return f'<!-- settings_table.py {block}: begin -->\n', f'<!-- settings_table.py {block}: end -->'


def read_block(document: str, block: str) -> Optional[Tuple[int, int]]:
    """(start, end) offsets of a block's content in ``document``, or None without its markers."""
    begin, end = markers(block)
    start = document.find(begin)
    stop = document.find(end, start + len(begin)) if start >= 0 else -1
    return None if start < 0 or stop < 0 else (start + len(begin), stop)


def replace_blocks(document: str, rendered: Dict[str, str]) -> str:
    for block, text in rendered.items():
        span = read_block(document, block)
        if span is None:
            raise KeyError(block)
        document = document[:span[0]] + text + document[span[1]:]
    return document


def run(args: argparse.Namespace) -> int:
    from sclip.errors import SCLIPError
    blocks = BLOCKS if args.block == 'all' else (args.block,)
    path = args.write or args.check
    if path is None:
        print('\n'.join(render(block) for block in blocks), end='')
        return 0
    if not osp.isfile(path):
        raise SCLIPError(f'{path}: not found; pass the document holding the tables (docs/PROTOCOL.md).')
    with open(path, encoding='utf-8') as f:
        document = f.read()
    missing = [block for block in blocks if read_block(document, block) is None]
    if missing:
        begin, end = markers(missing[0])
        raise SCLIPError(f'{path}: no {missing[0]!r} block; put the lines {begin.strip()!r} and {end!r} '
                         'where the table belongs.')
    rendered = {block: render(block) for block in blocks}
    if args.check:
        stale = [block for block in blocks if document[slice(*read_block(document, block))] != rendered[block]]
        for block in stale:
            print(f'{path}: the {block!r} table differs from the configs; run '
                  f'python tools/settings_table.py --write {path}', file=sys.stderr)
        return 1 if stale else 0
    with open(path, 'w', encoding='utf-8') as f:
        f.write(replace_blocks(document, rendered))
    print(f'{path}: wrote {", ".join(blocks)}')
    return 0


def main(argv=None) -> int:
    return run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()
    from sclip.cli import main_guard  # noqa: E402
    main_guard(lambda: sys.exit(run(arguments)))
