"""Published numbers with their provenance, and the paper's Table 1 layout, to check a reproduction against.

Why: a reproduction is only as good as its comparison with the published table; this is
that comparison, with the difference per benchmark and a tolerance check for CI. A perfect
reproduction of an official code gives what that code gives, which is not always its paper's
table: ``expected(method, benchmark)`` is the official README's number for the commit the
configs follow where there is one, else the paper's, each with its source and setting.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

TABLE1_COLUMNS = [('voc21', 'VOC21'), ('context60', 'Context60'), ('coco_object', 'Object'),
                  ('voc20', 'VOC20'), ('cityscapes', 'City'), ('context59', 'Context59'),
                  ('ade20k', 'ADE'), ('coco_stuff164k', 'Stuff')]
# SegEarth-OV's 17 remote-sensing sets (configs/_base_/datasets/rs_<key>.py), in its paper's order:
# semantic segmentation, building, road and water extraction.
RS_COLUMNS = [('openearthmap', 'OEM'), ('loveda', 'LoveDA'), ('isaid', 'iSAID'), ('potsdam', 'Potsdam'),
              ('vaihingen', 'Vaihingen'), ('uavid', 'UAVid'), ('udd5', 'UDD5'), ('vdd', 'VDD'),
              ('whu_aerial', 'WHU-Aer'), ('whu_sat2', 'WHU-Sat'), ('inria', 'Inria'), ('xbd_pre', 'xBD'),
              ('chn6_cug', 'CHN6'), ('deepglobe_road', 'DeepGlobe'), ('massachusetts_road', 'Mass.'),
              ('spacenet_road', 'SpaceNet'), ('wbs_si', 'WBS-SI')]
# A table's benchmarks: Table 1's eight, or the remote-sensing sets (tools/paper_table.py --suite).
SUITES = {'table1': TABLE1_COLUMNS, 'rs': RS_COLUMNS}

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
    # the official README's results (its default configs: PAMR on, image engineering, LLM texts)
    'itaclip': dict(voc21=67.9, context60=37.5, coco_object=37.7, cityscapes=40.2, coco_stuff164k=27.0),
    'floss': dict(cityscapes=37.0, voc20=80.2, context59=35.9, ade20k=18.4, coco_stuff164k=23.6, average=39.0),
    'gem': dict(voc21=56.9, context60=32.6, coco_object=31.1, voc20=79.9, cityscapes=30.8,
                context59=35.9, ade20k=15.7, coco_stuff164k=23.7, average=38.3),
    'sfp': {},  # the paper's table not verified; its repository's logged run: PROVENANCE
    # GEM + FreeCP (its configs' default base), the official README's results table
    'freecp': dict(voc21=64.7, context60=35.5, coco_object=36.9, voc20=80.6, cityscapes=35.7,
                   context59=39.1, ade20k=17.8, coco_stuff164k=25.8, average=42.0),
    # the two trained open-vocabulary segmenters of SCLIP's Table 1 (numbers of TCL's unified evaluation)
    'groupvit': dict(voc21=52.3, context60=18.7, coco_object=27.5, voc20=79.7, cityscapes=18.5,
                     context59=23.4, ade20k=10.4, coco_stuff164k=15.3, average=30.7),
    'tcl': dict(voc21=51.2, context60=24.3, coco_object=30.4, voc20=77.5, cityscapes=23.5,
                context59=30.3, ade20k=14.9, coco_stuff164k=19.6, average=33.9),
    # the README figure (the paper's main table): CLIP ViT-B/16 and OpenCLIP ViT-H/14 rows
    'trident': dict(voc21=67.1, context60=38.6, coco_object=41.1, voc20=84.5, cityscapes=42.9,
                    context59=42.2, ade20k=21.9, coco_stuff164k=28.3, average=45.8),
    'trident-h': dict(voc21=70.8, context60=40.1, coco_object=42.2, voc20=88.7, cityscapes=47.6,
                      context59=44.3, ade20k=26.7, coco_stuff164k=28.6, average=48.6),
    # the official README's ViT-B rows, SAM2 masks with 32 points per side (the published masks its
    # configs read by default); the SAM2_8 row is CORRCLIP_SAM2_8 below
    'corrclip': dict(voc21=74.8, voc20=88.8, context59=48.8, context60=44.2, cityscapes=49.4, ade20k=26.9,
                     coco_stuff164k=31.6, coco_object=43.7, average=51.0),
    'segearth_ov': {},  # remote-sensing datasets only (none of Table 1's configs); its tables: SOURCES
    # CLIPer without FGC, ViT-B/16 without its sliding window: the official README's results table
    'cliper': dict(voc21=60.7, context60=34.7, coco_object=36.3, voc20=84.3, cityscapes=35.9,
                   context59=38.4, ade20k=19.8, coco_stuff164k=25.4, average=41.9),
    # CASS's README figure (the paper's Table 1): CLIP ViT-B/16 + DINO ViT-B/8
    'cass': dict(voc21=65.8, context60=36.7, coco_object=37.8, voc20=87.8, cityscapes=39.4,
                 context59=40.2, ade20k=20.4, coco_stuff164k=26.7, average=44.4),
    # CASS's scale-up (a ViT-L/14 [CLS] encoder), the project page's figure: CASS_SCALE_UP_FIGURE
    'cass-l': dict(voc21=66.3, context60=37.0, coco_object=38.3, voc20=89.3, context59=40.7, ade20k=20.7),
}
# The project page's "Scale-up Version (mIoU)": CASS with a ViT-L/14 [CLS] encoder for the object
# presence prior (features still ViT-B/16; official scale_up=True); its six benchmarks (the
# figure's average, 48.7, is over these six, not Table 1's eight: not recorded as an average).
CASS_SCALE_UP_FIGURE = ('MICV-yonsei/MICV-yonsei.github.io cass/static/images/scaleup.png @ f4e4cfa (the CASS '
                        'project page micv-yonsei.github.io/cass/, "Scale-up Version (mIoU)"), CASS row with '
                        'the ViT-L/14 [CLS] encoder')
# The README's "Quantitative Results" shows the image of its project page (the repository
# MICV-yonsei/MICV-yonsei.github.io serves micv-yonsei.github.io/cass/).
CASS_FIGURE = ('MICV-yonsei/CASS README.md figure https://micv-yonsei.github.io/cass/static/images/miou.png '
               "(line 113, the paper's Table 1, CVPR 2025) @ 228ecdd; the image: "
               'MICV-yonsei/MICV-yonsei.github.io cass/static/images/miou.png @ c4e64e5')
TRIDENT_FIGURE = ('YuHengsss/Trident README.md figure assets/data_result.png (line 38, the paper\'s main table, '
                  'ICCV 2025) @ a93b346')
# CorrCLIP README line 129: SAM2 generated on the fly with 8 points per side (the official
# set_mask_generator; --cfg-options model.region_masks.type=sam2), MetaCLIP ViT-B/16
CORRCLIP_SAM2_8 = dict(voc21=73.9, voc20=87.6, context59=48.0, context60=43.7, cityscapes=47.9, ade20k=26.5,
                       coco_stuff164k=31.8, coco_object=43.6, average=50.4)
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
    'itaclip': 'ITACLIP README, "Results" (its default configurations; CVPRW 2025)',
    'floss': 'FLOSS README, "Results", NACLIP + FLOSS row (ICCV 2025)',
    'gem': 'FreeCP README (chenqi1126/FreeCP @ 6946aa7), "Results" table, GEM row (the GEM baseline as FreeCP '
           'reports it, ViT-B/16; the evaluation harness is not stated there). GEM\'s own paper evaluates '
           'VOC, Pascal Context and ADE20K under its own protocol; those numbers are not tabulated here',
    'fsa': 'FSA paper (ICCV 2025, arXiv 2508.20265), ProxyCLIP + FSA rows: no number recorded, none could be '
           'verified here (the README at dbd2da5 reports none)',
    'cass': CASS_FIGURE + ', CASS row (CLIP ViT-B/16 + DINO ViT-B/8)',
    'cass-l': CASS_SCALE_UP_FIGURE,
    'sfp': 'SFP paper (ICCV 2025) table not verified; its repository ships one logged run '
           '(VOC21, cfg_voc21: 61.4)',
    'freecp': 'FreeCP README (chenqi1126/FreeCP @ 6946aa7), "Results" table, GEM + FreeCP row (ICCV 2025; '
              'its configs\' default base; the MaskCLIP, SCLIP and ClearCLIP + FreeCP rows are its lines 107, '
              '111 and 113, runs of model.method.base)',
    'groupvit': 'SCLIP paper, Table 1 (GroupViT row: GroupViT evaluated on the eight benchmarks by TCL\'s '
                'unified protocol); GroupViT\'s README reports VOC, Context and COCO for its two checkpoints',
    'tcl': 'SCLIP paper, Table 1 (TCL row: TCL\'s main results, PAMR on, which kakaobrain/tcl README.md line '
           '193 @ bc2b551 says its default evaluation reproduces (its Table 2))',
    'trident': TRIDENT_FIGURE + ', Trident row under CLIP ViT-B/16',
    'trident-h': TRIDENT_FIGURE + ', Trident row under OpenCLIP ViT-H/14 (laion2b_s32b_b79k)',
    'corrclip': 'CorrCLIP README (ICCV 2025), "Results", ViT-B SAM2_32 row (MetaCLIP ViT-B/16 + DINO ViT-B/8, '
                'the published SAM2 region masks)',
    'cliper': 'CLIPer README (linsun449/cliper.code @ c05fa41) line 111, ViT-B/16 row, the values in parentheses '
              '(without FGC, its Stable Diffusion refinement, which is not implemented here), without the sliding '
              'window; line 112 (ViT-B/16*) is with it, the variant of its shipped VOC21, Context60, Context59 and '
              'COCO-Object configs',
    'segearth_ov': 'SegEarth-OV paper (CVPR 2025, arXiv 2410.01768) Tables 1-4 (17 remote-sensing datasets) and '
                   'its README figures @ 3e22a96 (images only): not read here (the paper\'s tables could not be '
                   'reached from this machine); the one number recorded is OpenEarthMap\'s as quoted in '
                   'likyoo/SegEarth-OV issue #8, the 16 others are unverified and left empty; its repository has '
                   'no config for the eight benchmarks of Table 1',
}
# Published averages with PAMR (per-benchmark numbers not tabulated here).
PUBLISHED_AVERAGE_ONLY = {'sclip+pamr': 40.1}
# Where each method's benchmark configs live, and the work dir tools/test.py gives them.
METHOD_CONFIGS = {'sclip': 'configs/sclip_{}.py', 'clip': 'configs/sclip_{}.py',
                  'maskclip': 'configs/sclip_{}.py', 'clearclip': 'configs/clearclip/{}.py',
                  'naclip': 'configs/naclip/{}.py', 'naclip+pamr': 'configs/naclip_pamr/{}.py',
                  'scclip': 'configs/scclip/{}.py', 'resclip': 'configs/resclip/{}.py',
                  'proxyclip': 'configs/proxyclip/{}.py', 'itaclip': 'configs/itaclip/{}.py',
                  'floss': 'configs/floss/{}.py', 'gem': 'configs/gem/{}.py', 'fsa': 'configs/fsa/{}.py',
                  'sfp': 'configs/sfp/{}.py', 'freecp': 'configs/freecp/{}.py',
                  'groupvit': 'configs/groupvit/{}.py', 'tcl': 'configs/tcl/{}.py',
                  'trident': 'configs/trident/{}.py', 'trident-h': 'configs/trident/{}.py',
                  'corrclip': 'configs/corrclip/{}.py',
                  'segearth_ov': 'configs/segearth_ov/{}.py',
                  'cass': 'configs/cass/{}.py', 'cass-l': 'configs/cass/{}.py', 'cliper': 'configs/cliper/{}.py'}
# The official code each method's configs follow (repository @ commit).
OFFICIAL_CODE = {
    'sclip': 'wangf3014/SCLIP @ b56bd30', 'clearclip': 'mc-lan/ClearCLIP @ ad68a40',
    'naclip': 'sinahmr/NACLIP @ 0cac3a6', 'naclip+pamr': 'sinahmr/NACLIP @ 0cac3a6',
    'scclip': 'SuleBai/SC-CLIP @ 0417ba9', 'resclip': 'yvhangyang/ResCLIP @ 0e085f7',
    'proxyclip': 'mc-lan/ProxyCLIP @ e7b767f', 'itaclip': 'm-arda-aydn/ITACLIP @ 521a33c',
    'floss': 'yasserben/FLOSS @ ccf1d49',
    'gem': "WalBouss/GEM @ 5fa677c on ClearCLIP's benchmark harness (mc-lan/ClearCLIP @ ad68a40)",
    'fsa': 'chi-chi-zx/FSA @ dbd2da5',
    'sfp': 'Kimsure/SFP @ 2804f5b (SFP_ICCV/)',
    'freecp': 'chenqi1126/FreeCP @ 6946aa7',
    'groupvit': 'NVlabs/GroupViT @ 13b7861 (segmentation/evaluation/group_vit_seg.py)',
    'tcl': 'kakaobrain/tcl @ bc2b551 (segmentation/evaluation/tcl_seg.py, models/tcl/tcl.py generate_masks)',
    'trident': 'YuHengsss/Trident @ a93b346', 'trident-h': 'YuHengsss/Trident @ a93b346',
    'corrclip': 'zdk258/CorrCLIP @ 103bc18 (CorrCLIPv1/)',
    'segearth_ov': 'likyoo/SegEarth-OV @ 3e22a96',
    'cass': 'MICV-yonsei/CASS @ 228ecdd',
    'cass-l': 'MICV-yonsei/CASS @ 228ecdd (scale_up=True)',
    'cliper': 'linsun449/cliper.code @ c05fa41 (ovs/main_ovs.py, --refinement None)',
}



# --- provenance: what a reproduction is expected to give, and where each number comes from ---

@dataclass(frozen=True)
class Expected:
    """The number a run of ``method``'s config on ``benchmark`` should give, and why.

    ``value``/``source``/``setting``: the official code's own reported number for the commit
    its configs follow where it exists (its README), else the paper's; ``source`` names the
    table or figure, or the README line and commit. ``paper``/``paper_source``: the paper's
    number, shown beside (None where the paper's is not recorded). ``second_hand``: the number
    was only verified as quoted by another repository or paper."""
    value: float
    source: str
    setting: str
    paper: Optional[float]
    paper_source: Optional[str]
    second_hand: bool


@dataclass(frozen=True)
class Number:
    """One published number with its source (table / figure, or README line @ commit) and setting."""
    value: float
    source: str
    setting: str
    second_hand: bool = False


# The official test set-up of each repository (configs/cfg_<benchmark>.py at OFFICIAL_CODE): short
# side of the resize and sliding windows (crop/stride), default and per benchmark; the same settings
# our configs use (tabulated in docs/PROTOCOL.md, tested in tests/test_method_fidelity.py).
OFFICIAL_SETUP: Dict[str, Tuple[int, Dict[str, int], str, Dict[str, str]]] = {
    'sclip': (336, dict(cityscapes=560, coco_stuff164k=448), '224/112', {}),
    'clearclip': (448, {}, '448/224', dict(cityscapes='224/224')),
    'naclip': (336, dict(cityscapes=560), '224/112', dict(voc21='whole image', voc20='whole image')),
    'scclip': (336, dict(cityscapes=560), '224/112', {}),
    'resclip': (336, dict(cityscapes=560), '224/112', dict(voc21='whole image', voc20='whole image')),
    'proxyclip': (336, dict(ade20k=448, cityscapes=448), '336/112', dict(cityscapes='224/112')),
    'itaclip': (336, dict(cityscapes=560, coco_stuff164k=448), '224/28', {}),
    'floss': (336, dict(cityscapes=560), '224/112', dict(voc20='whole image')),
    'gem': (448, {}, '448/224', dict(cityscapes='224/224')),  # ClearCLIP's harness
    'fsa': (336, dict(ade20k=448, cityscapes=448), '336/112', dict(cityscapes='224/80')),
    'sfp': (336, dict(ade20k=384, cityscapes=560), '224/112', {}),
    'freecp': (448, dict(cityscapes=560), '384/112', dict(cityscapes='224/112')),
    'groupvit': (448, {}, '448/224', {}),  # every official (and TCL's) dataset config
    'tcl': (448, {}, '448/224', {}),
    'trident': (448, dict(ade20k=576, context59=576, context60=576, cityscapes=688, voc20=336), '336/224',
                dict(voc20='336/112')),
    'corrclip': (336, dict(ade20k=448, cityscapes=448), '336/112', dict(cityscapes='224/112')),
    'cass': (336, dict(cityscapes=560), '224/112', dict(voc21='whole image')),
    # CLIPer: the whole image, averaged with windows where its config slides (sliding_crop_size)
    'cliper': (336, dict(cityscapes=560), 'whole image', {b: f'{crop}/112 averaged with the whole image' for b, crop in
                                                          (('voc21', 336), ('context60', 224), ('context59', 224),
                                                           ('coco_object', 224))}),
}
OFFICIAL_SETUP['trident-h'] = OFFICIAL_SETUP['trident']
OFFICIAL_SETUP['cass-l'] = OFFICIAL_SETUP['cass']
OFFICIAL_SETUP['naclip+pamr'] = OFFICIAL_SETUP['naclip']
BACKBONE = 'CLIP ViT-B/16 (OpenAI)'
PAPER_PROTOCOL = "the paper's protocol"


def setting(method: str, benchmark: str, pamr: bool = False, backbone: str = BACKBONE,
            protocol: Optional[str] = None) -> str:
    """'<backbone>; PAMR on|off; <resolution>': the official code's resize and windows for the
    benchmark, or ``protocol`` (e.g. "the paper's protocol") where that is what is known."""
    if protocol is None and method in OFFICIAL_SETUP:
        short, per_benchmark, windows, per_windows = OFFICIAL_SETUP[method]
        window = per_windows.get(benchmark, windows)
        protocol = (f'short side {per_benchmark.get(benchmark, short)}, '
                    f'{window if window == "whole image" else "windows " + window}')
    return f'{backbone}; PAMR {"on" if pamr else "off"}; {protocol or PAPER_PROTOCOL}'


def _numbers(method: str, values: Dict[str, float], source, second_hand=False, pamr=False,
             protocol: Optional[str] = None, backbone: str = BACKBONE) -> Dict[str, Number]:
    """``{benchmark: Number}``; ``source`` a string or ``benchmark -> string``; ``second_hand`` a
    bool or the set of benchmarks quoted second-hand."""
    def hand(benchmark):
        return benchmark in second_hand if isinstance(second_hand, (set, frozenset)) else bool(second_hand)
    return {b: Number(float(v), source(b) if callable(source) else source,
                      setting(method, b, pamr, backbone, protocol), hand(b)) for b, v in values.items()}


def _readme_lines(repo: str, commit: str, lines: Dict[str, Tuple[float, int]]) -> Tuple[Dict[str, float], Callable]:
    """Values and per-number sources for a README table: ``{benchmark: (value, line)}``."""
    return ({b: v for b, (v, _) in lines.items()},
            lambda b: f'{repo} README.md line {lines[b][1]} @ {commit}')


def _paper(method: str) -> Dict[str, float]:
    return {k: v for k, v in PUBLISHED.get(method, {}).items() if k != 'average'}


# Per method: the numbers its official code reports for the commit followed ('readme') and its
# paper's ('paper'); each a {benchmark: Number}. Methods only in PUBLISHED fall back to SOURCES.
PROVENANCE: Dict[str, Dict[str, Dict[str, Number]]] = {}


def _provenance() -> None:
    sclip_readme = _readme_lines('wangf3014/SCLIP', 'b56bd30', dict(
        ade20k=(16.45, 70), cityscapes=(32.34, 71), coco_object=(33.52, 72), coco_stuff10k=(25.91, 73),
        coco_stuff164k=(22.77, 74), context59=(34.46, 75), context60=(31.74, 76), voc20=(81.54, 77),
        voc21=(59.63, 78)))
    naclip_readme = _readme_lines('sinahmr/NACLIP', '0cac3a6', dict(
        voc21=(64.07, 78), context60=(34.99, 79), coco_object=(36.19, 80), voc20=(83.03, 81),
        cityscapes=(38.27, 82), context59=(38.35, 83), ade20k=(19.05, 84), coco_stuff164k=(25.69, 85)))
    itaclip_readme = _readme_lines('m-arda-aydn/ITACLIP', '521a33c', dict(
        coco_stuff164k=(27.0, 41), coco_object=(37.7, 42), voc21=(67.9, 43), context60=(37.5, 44),
        cityscapes=(40.2, 45)))
    resclip_fig = {b: 'yvhangyang/ResCLIP README.md figure figs/main_results_w.png (line 34) @ 0e085f7'
                   for b in ('voc21', 'context60', 'coco_object')}
    resclip_fig.update({b: 'yvhangyang/ResCLIP README.md figure figs/main_results_wo.png (line 30) @ 0e085f7'
                        for b in ('voc20', 'context59', 'coco_stuff164k', 'cityscapes', 'ade20k')})
    clear_fig = 'mc-lan/ClearCLIP README.md figure assets/results.png (line 93, the paper\'s Table 2) @ ad68a40'
    no_background = ('voc20', 'context59', 'coco_stuff164k', 'cityscapes', 'ade20k')
    PROVENANCE.update({
        'sclip': dict(readme=_numbers('sclip', sclip_readme[0], sclip_readme[1]),
                      paper=_numbers('sclip', _paper('sclip'), 'SCLIP paper (ECCV 2024), Table 1',
                                     protocol=PAPER_PROTOCOL)),
        'clip': dict(paper=_numbers('clip', _paper('clip'), 'SCLIP paper, Table 1 (CLIP row)',
                                    protocol=PAPER_PROTOCOL)),
        'maskclip': dict(paper=_numbers('maskclip', _paper('maskclip'), 'SCLIP paper, Table 1 (MaskCLIP row)',
                                        protocol=PAPER_PROTOCOL)),
        # the README shows the paper's appendix Table 2 (the five no-background columns); the other
        # three are the paper's Table 1 as quoted in ResCLIP's README figure
        'clearclip': dict(
            readme=_numbers('clearclip', {b: v for b, v in _paper('clearclip').items() if b in no_background},
                            clear_fig, protocol=PAPER_PROTOCOL),
            paper=_numbers('clearclip', _paper('clearclip'),
                           lambda b: 'ClearCLIP paper (ECCV 2024), appendix Table 2' if b in no_background else
                           'ClearCLIP paper (ECCV 2024), Table 1, as quoted in yvhangyang/ResCLIP README.md figure '
                           'figs/main_results_w.png @ 0e085f7',
                           second_hand={'voc21', 'context60', 'coco_object'}, protocol=PAPER_PROTOCOL)),
        # the README @ 0cac3a6 reports the PAMR set-up (naclip+pamr); the no-PAMR table is the
        # paper's as quoted in ResCLIP's README figures
        'naclip': dict(paper=_numbers('naclip', _paper('naclip'),
                                      lambda b: 'NACLIP paper (WACV 2025), main table, as quoted in ' + resclip_fig[b]
                                      .replace(' @ 0e085f7', ' @ 0e085f7 (NACLIP row)'),
                                      second_hand=True, protocol=PAPER_PROTOCOL)),
        'naclip+pamr': dict(readme=_numbers('naclip+pamr', naclip_readme[0], naclip_readme[1], pamr=True)),
        # the README figures are the paper's Tables 1 and 2
        'resclip': dict(readme=_numbers('resclip', _paper('resclip'),
                                        lambda b: resclip_fig[b] + ' (NACLIP + ResCLIP row)'),
                        paper=_numbers('resclip', _paper('resclip'),
                                       lambda b: 'ResCLIP paper (CVPR 2025), main results ' +
                                       ('with' if b in ('voc21', 'context60', 'coco_object') else 'without') +
                                       ' background (NACLIP + ResCLIP row)', protocol=PAPER_PROTOCOL)),
        'scclip': dict(paper=_numbers('scclip', _paper('scclip'), SOURCES['scclip'], second_hand=True,
                                      protocol=PAPER_PROTOCOL)),
        # the README's results table, its default configs (PAMR on in every one)
        'itaclip': dict(readme=_numbers('itaclip', itaclip_readme[0], itaclip_readme[1], pamr=True)),
        # the README's NACLIP + FLOSS row (PAMR off: tools/eval_naclip.py sets pamr_steps=0)
        'floss': dict(readme=_numbers('floss', _paper('floss'),
                                      'yasserben/FLOSS README.md line 173 (NACLIP + FLOSS row) @ ccf1d49')),
        'proxyclip': dict(paper=_numbers('proxyclip', _paper('proxyclip'),
                                         'ProxyCLIP paper (ECCV 2024), CLIP ViT-B/16 + DINO ViT-B/8 row',
                                         protocol=PAPER_PROTOCOL, backbone='CLIP ViT-B/16 (OpenAI) + DINO ViT-B/8')),
        # GEM's repository reports no benchmark numbers, and its paper other protocols; these are
        # FreeCP's own evaluation of GEM (its baseline row), not a quote of GEM's authors
        'gem': dict(paper=_numbers('gem', _paper('gem'),
                                   'GEM evaluated by FreeCP: chenqi1126/FreeCP README.md line 108 @ 6946aa7 '
                                   '(GEM row of its results table)',
                                   protocol="FreeCP's evaluation of GEM (harness not stated)")),
        # the official repository's own logged run of its shipped cfg_voc21 (its model line says
        # cross_e=11, which its forward ignores: blocks 4-10 are fused whatever the config)
        # GroupViT's README (@ 13b7861) reports VOC, Context and COCO-Object for its GCC+YFCC checkpoint
        # (the default model.checkpoint); SCLIP's Table 1 (its eight numbers as TCL evaluated them)
        'groupvit': dict(
            readme=_numbers('groupvit', dict(voc21=52.3, context60=22.4, coco_object=24.3),
                            lambda b: 'NVlabs/GroupViT README.md line %d (GCC + YFCC row) @ 13b7861'
                            % dict(voc21=108, context60=109, coco_object=110)[b],
                            backbone='GroupViT ViT-S/16, GCC + YFCC checkpoint (group_vit_gcc_yfcc_30e)'),
            paper=_numbers('groupvit', _paper('groupvit'), 'SCLIP paper (ECCV 2024), Table 1 (GroupViT row)',
                           protocol=PAPER_PROTOCOL, backbone='GroupViT (checkpoint not stated)')),
        'tcl': dict(paper=_numbers('tcl', _paper('tcl'), 'SCLIP paper (ECCV 2024), Table 1 (TCL row)', pamr=True,
                                   backbone='TCL on CLIP ViT-B/16 (tcl.pth)')),
        # the README's table (its configs' default: the published SAM2 masks, 32 points per side)
        'corrclip': dict(readme=_numbers('corrclip', _paper('corrclip'),
                                         'zdk258/CorrCLIP CorrCLIPv1/README.md line 128 (ViT-B, SAM2_32 row) @ 103bc18',
                                         backbone='MetaCLIP ViT-B/16 + DINO ViT-B/8 + SAM2 masks (32 points)')),
        'sfp': dict(readme=_numbers('sfp', dict(voc21=61.4),
                                    'Kimsure/SFP SFP_ICCV/test/20251207_184940/20251207_184940.log, last line '
                                    '(mIoU: 61.4000) @ 2804f5b')),
        # the figure does not say whether its runs refine with SAM; the official eval_all.py does
        # (dist_test.sh passes --sam_refine), as the README's evaluation command: these rows are the
        # configs with model.method.sam_refine=True (METHOD_OVERRIDES)
        **{key: dict(paper=_numbers(key, _paper(key), SOURCES[key], protocol=PAPER_PROTOCOL + TRIDENT_REFINE,
                                    backbone=backbone))
           for key, backbone in (('trident', 'CLIP ViT-B/16 (OpenAI) + DINO ViT-B/16 + SAM ViT-B'),
                                 ('trident-h', 'OpenCLIP ViT-H/14 (laion2b_s32b_b79k) + DINO ViT-B/16 + SAM ViT-B'))},
        # the README's table, without FGC: each benchmark's number of the variant its shipped config
        # runs (line 112 with the sliding window, line 111 without); the row without it (41.9): 'paper'
        'cliper': dict(
            readme=_numbers('cliper', *_readme_lines('linsun449/cliper.code', 'c05fa41', dict(
                voc21=(62.1, 112), context60=(35.7, 112), coco_object=(37.5, 112), context59=(39.6, 112),
                voc20=(84.3, 111), coco_stuff164k=(25.4, 111), ade20k=(19.8, 111), cityscapes=(35.9, 111)))),
            paper=_numbers('cliper', _paper('cliper'), 'linsun449/cliper.code README.md line 111 (ViT-B/16 row, '
                           'without FGC, without the sliding window) @ c05fa41',
                           protocol='short side 336 (Cityscapes 560), whole image')),
        # the paper's Tables 1-4 could not be read here; one number is known second-hand: a reproduction
        # report on the official repository quotes the paper's OpenEarthMap mIoU ("39.75 (40.3 in the
        # paper)", likyoo/SegEarth-OV issue #8, 2024-11-24, the maintainer not contesting it)
        'segearth_ov': dict(paper=_numbers(
            'segearth_ov', dict(openearthmap=40.3),
            'SegEarth-OV paper (CVPR 2025), Table 1 (semantic segmentation), as quoted in likyoo/SegEarth-OV '
            'issue #8', second_hand=True, protocol=SEGEARTH_PROTOCOL)),
        # the README figure (the paper's Table 1), PAMR off as its eval_all.sh runs
        'cass': dict(paper=_numbers('cass', _paper('cass'), SOURCES['cass'], protocol=PAPER_PROTOCOL,
                                    backbone='CLIP ViT-B/16 (OpenAI) + DINO ViT-B/8')),
        # the project page's scale-up figure: the configs with model.method.presence_clip (METHOD_OVERRIDES)
        'cass-l': dict(paper=_numbers('cass-l', _paper('cass-l'), SOURCES['cass-l'], protocol=PAPER_PROTOCOL,
                                      backbone='CLIP ViT-B/16 (OpenAI) + DINO ViT-B/8, [CLS] encoder CLIP '
                                               'ViT-L/14 (OpenAI)')),
        # the README's results table, GEM + FreeCP row (the evaluation of its shipped configs)
        'freecp': dict(readme=_numbers('freecp', _paper('freecp'),
                                       'chenqi1126/FreeCP README.md line 109 (GEM + FreeCP row) @ 6946aa7')),
    })


# Where a method's missing numbers of a suite are published but could not be verified here (so a
# table says so rather than "nothing published"; SOURCES says why for each).
UNVERIFIED = {
    'segearth_ov': {'rs': 'published in the SegEarth-OV paper, not verified here (no number recorded)'},
    'fsa': {'table1': 'published in the FSA paper (arXiv 2508.20265), not verified here (no number recorded: '
                      'its README at dbd2da5 has none, and the paper could not be read here)'},
    'proxyclip': {'table1': 'published in the ProxyCLIP paper, not verified here (no number recorded)'},
    'sfp': {'table1': 'published in the SFP paper (ICCV 2025), not verified here (no number recorded)'},
}
SEGEARTH_PROTOCOL = ('its official cfg_<dataset>.py: long side 448, windows 224/112, SimFeatUp (jbu_one, '
                     'xclip_jbu_one_million_aid.ckpt), [CLS] bias -0.3')
TRIDENT_REFINE = ("; SAM's refinement of the labels on (model.method.sam_refine=True: the official eval_all.py "
                  'runs dist_test.sh, which passes --sam_refine, as does the README\'s evaluation command)')
_provenance()


def expected(method: str, benchmark: str) -> Optional[Expected]:
    """What a run of ``method``'s configs on ``benchmark`` is expected to give: the official
    code's README number for the commit followed where one exists, else the published (paper)
    number; None where nothing is published. A method with only an old-style PUBLISHED row gets
    its SOURCES entry as the source of every number ('source: ...', not per number)."""
    rows = PROVENANCE.get(method)
    if rows is None:
        value = PUBLISHED.get(method, {}).get(benchmark)
        if value is None:
            return None
        source = f'source: {SOURCES.get(method, "not recorded")}'
        return Expected(float(value), source, 'not recorded per number (see the source)', float(value), source, False)
    readme, paper = rows.get('readme', {}).get(benchmark), rows.get('paper', {}).get(benchmark)
    chosen = readme or paper
    if chosen is None:
        return None
    return Expected(chosen.value, chosen.source, chosen.setting, paper.value if paper else None,
                    paper.source if paper else None, chosen.second_hand)


def suite_of(method: str, suite: Optional[str] = None) -> str:
    """The table a method's row is in: ``suite`` where given, else the remote-sensing sets for
    SegEarth-OV (it has configs for nothing else) and Table 1's eight for every other method."""
    if suite is not None and suite not in SUITES:
        from .errors import SCLIPError
        raise SCLIPError(f'suite {suite!r} is not one of {", ".join(SUITES)}.')
    return suite or ('rs' if method == 'segearth_ov' else 'table1')


def columns(method: str, suite: Optional[str] = None) -> List[Tuple[str, str]]:
    """(benchmark, label) of the table ``method``'s row is in."""
    return SUITES[suite_of(method, suite)]


def config_pattern(method: str, suite: Optional[str] = None) -> str:
    """Where ``method``'s configs for the suite's benchmarks live: METHOD_CONFIGS for Table 1 (and
    SegEarth-OV's official remote-sensing configs); configs/remote_sensing/<method>/ for another
    method on the remote-sensing sets (ours, tools/make_rs_configs.py)."""
    pattern = METHOD_CONFIGS[method]
    if suite_of(method, suite) == 'table1' or method == 'segearth_ov':
        return pattern
    folder = pattern.split('/')[1] if pattern.count('/') == 2 else pattern.split('/')[1].split('_{}')[0]
    return f'configs/remote_sensing/{folder}/{{}}.py'


def expected_row(method: str, suite: Optional[str] = None) -> Dict[str, Expected]:
    """``{benchmark: Expected}`` over the suite's columns (benchmarks without a number left out)."""
    row = {key: expected(method, key) for key, _ in columns(method, suite)}
    return {key: value for key, value in row.items() if value is not None}


# Rows that are another row's configs with overrides (the CLIP and MaskCLIP rows of SCLIP's table).
METHOD_OVERRIDES: Dict[str, Dict[str, str]] = {'clip': {'model.attention.type': 'vanilla'},
                                               'maskclip': {'model.attention.type': 'maskclip'},
                                               'trident': {'model.method.sam_refine': True},
                                               'trident-h': {'model.arch': 'ViT-H-14',
                                                             'model.clip_path': 'laion2b_s32b_b79k',
                                                             'model.method.sam_refine': True},
                                               'cass-l': {'model.method.presence_clip.arch': 'ViT-L-14',
                                                          'model.method.presence_clip.clip_path': 'openai'}}


def result_dir(results_dir: str, method: str, benchmark: str, suite: Optional[str] = None) -> str:
    """Where tools/test.py's default work dir puts a method's benchmark, under ``results_dir``;
    rows made by overrides get a folder of their own (``<results_dir>/clip/sclip_voc21``)."""
    config = config_pattern(method, suite).format(benchmark)
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
    config's own without overrides (unless that row needs overrides of its own: Trident's,
    refined with SAM), CLIP's or MaskCLIP's for SCLIP's configs with theirs, else None (a
    variant no paper published)."""
    changed = method_overrides(overrides)
    if not changed and config_key not in METHOD_OVERRIDES:
        return config_key
    for key, expected in METHOD_OVERRIDES.items():
        if METHOD_CONFIGS.get(key) == METHOD_CONFIGS.get(config_key or '') and changed == method_overrides(expected):
            return key
    return None


def row_benchmark(metrics: dict, method: str, suite: Optional[str] = None) -> Optional[str]:
    """The Table 1 benchmark a ``metrics.json`` is a result of for ``method``'s row, by the
    identity it records (its config is the row's benchmark config, its overrides make this
    row), or None."""
    identity = metrics.get('identity') if isinstance(metrics.get('identity'), dict) else {}
    config = (identity.get('config') or {}) if isinstance(identity.get('config'), dict) else {}
    benchmark, filename = metrics.get('benchmark'), config.get('file') or metrics.get('config')
    if benchmark not in dict(columns(method, suite)) or not isinstance(filename, str) or 'mIoU' not in metrics:
        return None
    expected = config_pattern(method, suite).format(benchmark)
    if not ('/' + filename.replace(osp.sep, '/')).endswith('/' + expected):
        return None
    return benchmark if paper_row(metrics.get('paper_key'), config.get('overrides')) == method else None


def find_results(results_dir: str, method: str, suite: Optional[str] = None) -> Dict[str, str]:
    """benchmark -> the ``metrics.json`` of ``method``'s row under ``results_dir``: the default
    work dir of tools/test.py when it holds one, else any ``metrics.json`` anywhere below whose
    recorded identity is the row's (a ``--work-dir`` of one's choice, a sweep's cell); the most
    recently finished of several."""
    found = {}
    for benchmark, _ in columns(method, suite):
        path = osp.join(result_dir(results_dir, method, benchmark, suite), 'metrics.json')
        if osp.isfile(path):
            found[benchmark] = path
    candidates: Dict[str, list] = {}
    for folder, subfolders, files in os.walk(results_dir):
        subfolders[:] = sorted(d for d in subfolders if d not in ('predictions', 'vis_data'))
        path = osp.join(folder, 'metrics.json')
        if 'metrics.json' not in files or path in found.values():
            continue
        try:
            with open(path) as f:
                metrics = json.load(f)
        except (OSError, ValueError):
            continue
        benchmark = row_benchmark(metrics, method, suite) if isinstance(metrics, dict) else None
        if benchmark is not None and benchmark not in found:
            candidates.setdefault(benchmark, []).append((str(metrics.get('finished') or ''), path))
    found.update({benchmark: max(items)[1] for benchmark, items in candidates.items()})
    return found


def collect(results_dir: str, method: str = 'sclip', suite: Optional[str] = None) -> Dict[str, float]:
    """mIoU by benchmark from each result of ``find_results``; a result in the row's default
    work dir that was run as another row (e.g. SCLIP's numbers under the CLIP row) is refused
    in one line."""
    from .errors import SCLIPError
    found = {}
    paths = find_results(results_dir, method, suite)
    for benchmark, _ in columns(method, suite):
        path = paths.get(benchmark)
        if path is not None:
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


# --- the comparison with the expected numbers (tools/paper_table.py) ---------------------------

def _number(value: Optional[float]) -> str:
    """A published number as published: two decimals where it has them, else one."""
    return '-' if value is None else (f'{value:.1f}' if round(value, 1) == value else f'{value:.2f}')


def _mean(values: Dict[str, Optional[float]], keys: Optional[List[str]] = None) -> Optional[float]:
    keys = keys or [key for key, _ in TABLE1_COLUMNS]
    return sum(values[k] for k in keys) / len(keys) if all(values.get(k) is not None for k in keys) else None


def expected_table(ours: Dict[str, float], method: str, suite: Optional[str] = None) -> List[List[str]]:
    """Rows: header, expected (the official code's reported numbers where they exist), the
    paper's, ours, difference (ours - expected). Averages over the eight where all are known (the
    paper's row: its published average)."""
    row = expected_row(method, suite)
    keys = [key for key, _ in columns(method, suite)]
    want = {k: row[k].value if k in row else None for k in keys}
    paper = {k: row[k].paper if k in row else None for k in keys}
    ours_avg, want_avg = _mean(ours, keys), _mean(want, keys)
    paper_avg = PUBLISHED.get(method, {}).get('average') if any(v is not None for v in paper.values()) else None

    def signed(a, b):
        return '-' if a is None or b is None else f'{a - b:+.2f}'
    return [['', *[label for _, label in columns(method, suite)], 'Avg'],
            ['expected', *[_number(want[k]) for k in keys], _number(None if want_avg is None else round(want_avg, 2))],
            ['paper', *[_number(paper[k]) for k in keys], _number(paper_avg)],
            ['ours', *['-' if ours.get(k) is None else f'{ours[k]:.2f}' for k in keys],
             '-' if ours_avg is None else f'{ours_avg:.2f}'],
            ['diff', *[signed(ours.get(k), want[k]) for k in keys], signed(ours_avg, want_avg)]]


def source_summary(method: str, suite: Optional[str] = None) -> str:
    """The expected numbers' sources, README lines folded: 'wangf3014/SCLIP README.md @ b56bd30
    (lines 70-78)'; second-hand ones marked."""
    import re
    groups: Dict[str, List[int]] = {}
    for number in expected_row(method, suite).values():
        match = re.search(r' line (\d+) @ ', number.source)
        key = (number.source.replace(match.group(0), ' @ ') if match else number.source) + \
            (' [second-hand]' if number.second_hand else '')
        groups.setdefault(key, []).extend([int(match.group(1))] if match else [])
    return '; '.join(f'{key} (lines {min(lines)}-{max(lines)})' if lines else key for key, lines in groups.items())


def expected_sources(method: str, suite: Optional[str] = None) -> List[str]:
    """One line per benchmark: expected number, its source and setting, the paper's beside."""
    lines = []
    unverified = UNVERIFIED.get(method, {}).get(suite_of(method, suite), 'nothing published')
    for key, label in columns(method, suite):
        number = expected(method, key)
        if number is None:
            lines.append(f'{label}: {unverified}')
            continue
        hand = ' [second-hand]' if number.second_hand else ''
        paper = '' if number.paper_source in (None, number.source) else \
            f' | paper {_number(number.paper)}: {number.paper_source}'
        lines.append(f'{label}: {_number(number.value)} from {number.source}{hand} ({number.setting}){paper}')
    return lines


def has_config(method: str, benchmark: str, suite: Optional[str] = None) -> bool:
    """Whether ``method`` has a config for ``benchmark`` (ITACLIP's and FLOSS's official codes
    cover five of the eight benchmarks; docs/PROTOCOL.md lists which)."""
    return osp.isfile(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), config_pattern(method, suite).format(benchmark)))


def method_columns(method: str, suite: Optional[str] = None) -> List[tuple]:
    """The suite's columns that ``method`` has a config for."""
    return [(key, label) for key, label in columns(method, suite) if has_config(method, key, suite)]


def check_expected(ours: Dict[str, float], method: str, tolerance: float, suite: Optional[str] = None) -> List[str]:
    """Benchmarks missing or off the expected number by more than ``tolerance`` mIoU points,
    each naming the source it was compared with."""
    problems = []
    for key, label in method_columns(method, suite):
        number = expected(method, key)
        if key not in ours:
            problems.append(f'{label}: no result')
        elif number is None:
            continue  # nothing published to compare with
        elif abs(ours[key] - number.value) > tolerance:
            problems.append(f'{label}: {ours[key]:.2f} vs expected {_number(number.value)} from {number.source} '
                            f'(off by {ours[key] - number.value:+.2f} > {tolerance})')
    return problems
