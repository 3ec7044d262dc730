"""Published numbers and the paper's Table 1 layout, to check a reproduction against.

Why: a reproduction is only as good as its comparison with the published table; this is
that comparison, with the difference per benchmark and a tolerance check for CI.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, List, Optional

TABLE1_COLUMNS = [('voc21', 'VOC21'), ('context60', 'Context60'), ('coco_object', 'Object'),
                  ('voc20', 'VOC20'), ('cityscapes', 'City'), ('context59', 'Context59'),
                  ('ade20k', 'ADE'), ('coco_stuff164k', 'Stuff')]

# Table 1 mIoU of each method's paper (the eight benchmarks, then the published average); a
# benchmark missing from a row has no published number we could verify (see SOURCES).
PUBLISHED: Dict[str, Dict[str, float]] = {
    'sclip': dict(voc21=59.1, context60=30.4, coco_object=30.5, voc20=80.4, cityscapes=32.2,
                  context59=34.2, ade20k=16.1, coco_stuff164k=22.4, average=38.2),
    'clip': dict(voc21=18.8, context60=9.9, coco_object=8.1, voc20=49.4, cityscapes=6.5,
                 context59=11.1, ade20k=3.1, coco_stuff164k=5.7, average=14.1),
    'maskclip': dict(voc21=43.4, context60=23.2, coco_object=20.6, voc20=74.9, cityscapes=24.9,
                     context59=26.4, ade20k=11.9, coco_stuff164k=16.7, average=30.3),
    'clearclip': dict(voc21=51.8, context60=32.6, coco_object=33.0, voc20=80.9, cityscapes=30.0,
                      context59=35.9, ade20k=16.7, coco_stuff164k=23.9, average=38.1),
    'naclip': dict(voc21=58.9, context60=32.2, coco_object=33.2, voc20=79.7, cityscapes=35.5,
                   context59=35.2, ade20k=17.4, coco_stuff164k=23.3, average=39.4),
    'naclip+pamr': dict(voc21=64.07, context60=34.99, coco_object=36.19, voc20=83.03, cityscapes=38.27,
                        context59=38.35, ade20k=19.05, coco_stuff164k=25.69, average=42.46),
    'scclip': dict(voc21=64.6, context60=36.8, coco_object=37.7, voc20=84.3, cityscapes=41.0,
                   context59=40.1, ade20k=20.1, coco_stuff164k=26.6, average=43.9),
    'resclip': dict(voc21=61.1, context60=33.5, coco_object=35.0, voc20=86.0, cityscapes=35.9,
                    context59=36.8, ade20k=18.0, coco_stuff164k=24.7, average=41.4),
    'proxyclip': dict(voc21=61.3, context60=35.3, coco_object=37.5, cityscapes=38.1, ade20k=20.2,
                      average=42.3),
    'sfp': dict(voc21=61.4),
}
# Where each published row comes from (ViT-B/16, OpenAI weights, no PAMR unless named).
SOURCES: Dict[str, str] = {
    'sclip': 'SCLIP paper (ECCV 2024), Table 1',
    'clip': 'SCLIP paper, Table 1 (CLIP row)',
    'maskclip': 'SCLIP paper, Table 1 (MaskCLIP row)',
    'clearclip': 'ClearCLIP paper (ECCV 2024); the five no-background columns also in its README figure',
    'naclip': 'NACLIP paper (WACV 2025), main table without PAMR (as quoted in ResCLIP\'s README figure)',
    'naclip+pamr': 'NACLIP README, "Results" (its default set-up, PAMR on)',
    'scclip': 'SC-CLIP paper, Table 1 (as quoted by later papers; the average 43.9 is in the paper text)',
    'resclip': 'ResCLIP README figures, NACLIP + ResCLIP row (CVPR 2025)',
    'proxyclip': 'ProxyCLIP paper (ECCV 2024), CLIP ViT-B/16 + DINO ViT-B/8; VOC20, Context59 and '
                 'COCO-Stuff not verified',
    'sfp': 'SFP repository\'s shipped test log SFP_ICCV/test/20251207_184940 (VOC21 with its cfg_voc21, '
           'mIoU 61.40); the paper\'s (ICCV 2025) Table 1 not verified',
}
# Published averages with PAMR (per-benchmark numbers not tabulated here).
PUBLISHED_AVERAGE_ONLY = {'sclip+pamr': 40.1}
# Where each method's benchmark configs live, and the work dir tools/test.py gives them.
METHOD_CONFIGS = {'sclip': 'configs/sclip_{}.py', 'clip': 'configs/sclip_{}.py',
                  'maskclip': 'configs/sclip_{}.py', 'clearclip': 'configs/clearclip/{}.py',
                  'naclip': 'configs/naclip/{}.py', 'naclip+pamr': 'configs/naclip_pamr/{}.py',
                  'scclip': 'configs/scclip/{}.py', 'resclip': 'configs/resclip/{}.py',
                  'proxyclip': 'configs/proxyclip/{}.py', 'sfp': 'configs/sfp/{}.py'}
# The official code each method's configs follow (repository @ commit).
OFFICIAL_CODE = {
    'sclip': 'wangf3014/SCLIP @ b56bd30', 'clearclip': 'mc-lan/ClearCLIP @ ad68a40',
    'naclip': 'sinahmr/NACLIP @ 0cac3a6', 'naclip+pamr': 'sinahmr/NACLIP @ 0cac3a6',
    'scclip': 'SuleBai/SC-CLIP @ 0417ba9', 'resclip': 'yvhangyang/ResCLIP @ 0e085f7',
    'proxyclip': 'mc-lan/ProxyCLIP @ e7b767f', 'sfp': 'Kimsure/SFP @ 2804f5b (SFP_ICCV/)',
}


# Rows that are another row's configs with overrides (the CLIP and MaskCLIP rows of SCLIP's table).
METHOD_OVERRIDES: Dict[str, Dict[str, str]] = {'clip': {'model.attention.type': 'vanilla'},
                                               'maskclip': {'model.attention.type': 'maskclip'}}


def result_dir(results_dir: str, method: str, benchmark: str) -> str:
    """Where tools/test.py's default work dir puts a method's benchmark, under ``results_dir``;
    rows made by overrides get a folder of their own (``<results_dir>/clip/sclip_voc21``)."""
    config = METHOD_CONFIGS[method].format(benchmark)
    parts = config.split('/')[1:]  # drop 'configs'
    stem = osp.splitext(parts[-1])[0]
    own = [method] if method in METHOD_OVERRIDES else []
    return osp.join(results_dir, *own, *parts[:-1], stem)


def method_overrides(overrides: Optional[dict]) -> Dict[str, str]:
    """The overrides that change what a method computes (not paths, not speed settings)."""
    from .identity import neutral_override
    return {str(k): str(v) for k, v in (overrides or {}).items() if not neutral_override(k)}


def paper_row(config_key: Optional[str], overrides: Optional[dict]) -> Optional[str]:
    """The published row a run of ``config_key``'s config with ``overrides`` reproduces: the
    config's own without overrides, CLIP's or MaskCLIP's for SCLIP's configs with theirs,
    else None (a variant no paper published)."""
    changed = method_overrides(overrides)
    if not changed:
        return config_key
    for key, expected in METHOD_OVERRIDES.items():
        if METHOD_CONFIGS.get(key) == METHOD_CONFIGS.get(config_key or '') and changed == expected:
            return key
    return None


def collect(results_dir: str, method: str = 'sclip') -> Dict[str, float]:
    """mIoU by benchmark from each ``<result_dir>/metrics.json``; a result that was run as
    another row (e.g. SCLIP's numbers under the CLIP row) is refused in one line."""
    from .errors import SCLIPError
    found = {}
    for benchmark, _ in TABLE1_COLUMNS:
        path = osp.join(result_dir(results_dir, method, benchmark), 'metrics.json')
        if osp.isfile(path):
            with open(path) as f:
                metrics = json.load(f)
            identity = metrics.get('identity') if isinstance(metrics.get('identity'), dict) else None
            if identity is not None:
                overrides = (identity.get('config') or {}).get('overrides')
                key = metrics.get('paper_key') or method
                if paper_row(key, overrides) != method:
                    shown = ' '.join(f'{k}={v}' for k, v in method_overrides(overrides).items()) or 'no overrides'
                    wanted = ' '.join(f'{k}={v}' for k, v in METHOD_OVERRIDES.get(method, {}).items())
                    raise SCLIPError(f'{path} was run with {shown}, not as the {method} row'
                                     f'{" (" + wanted + ")" if wanted else ""}; give each row its own '
                                     '--results-dir or rerun it with --run.')
            found[benchmark] = float(metrics['mIoU'])
    return found


def table(ours: Dict[str, float], published: Dict[str, float]) -> List[List[str]]:
    """Rows: header, published, ours, difference (ours - published)."""
    header = ['', *[label for _, label in TABLE1_COLUMNS], 'Avg']
    keys = [key for key, _ in TABLE1_COLUMNS]
    ours_avg = sum(ours[k] for k in keys) / len(keys) if all(k in ours for k in keys) else None
    pub_avg = published.get('average')

    def fmt(value: Optional[float], signed: bool = False) -> str:
        return '-' if value is None else (f'{value:+.1f}' if signed else f'{value:.1f}')
    diffs = [None if ours.get(k) is None or published.get(k) is None else ours[k] - published[k] for k in keys]
    avg_diff = None if ours_avg is None or pub_avg is None else ours_avg - pub_avg
    return [header,
            ['published', *[fmt(published.get(k)) for k in keys], fmt(pub_avg)],
            ['ours', *[fmt(ours.get(k)) for k in keys], fmt(ours_avg)],
            ['diff', *[fmt(d, True) for d in diffs], fmt(avg_diff, True)]]


def format_table(rows: List[List[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [' | '.join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, '-+-'.join('-' * w for w in widths))
    return '\n'.join(lines)


def check(ours: Dict[str, float], published: Dict[str, float], tolerance: float) -> List[str]:
    """Benchmarks missing or off by more than ``tolerance`` mIoU points."""
    problems = []
    for key, label in TABLE1_COLUMNS:
        if key not in ours:
            problems.append(f'{label}: no result')
        elif published.get(key) is None:
            continue  # nothing published to compare with
        elif abs(ours[key] - published[key]) > tolerance:
            problems.append(f'{label}: {ours[key]:.2f} vs published {published[key]:.1f} '
                            f'(off by {ours[key] - published[key]:+.2f} > {tolerance})')
    return problems
