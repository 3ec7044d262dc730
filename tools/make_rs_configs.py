"""Write configs/remote_sensing/<method>/<dataset>.py: every method on SegEarth-OV's 17 remote-sensing sets.

    python tools/make_rs_configs.py [--check]

Why: no method's official repository except SegEarth-OV's has remote-sensing configs, so these
pairs are ours, and each must be the same composition: the DATASET'S FACTS (SegEarth-OV's official
cfg_<dataset>.py, read from configs/segearth_ov/<dataset>.py: its class file and separator, prob_thd,
bg_idx; the data and test pipeline of configs/_base_/datasets/rs_<dataset>.py) with the METHOD'S
SETTINGS (its ``_base_`` file, plus the benchmark-tuned values of its official ADE20k config that its
base leaves unset; METHODS below names each). docs/PROTOCOL.md ("Remote sensing: every method")
states the split and why. Writing 17 configs per method (and FIRST_NAME_METHODS' derived class files,
configs/class_names/remote_sensing/first_name/) by hand would drift; this tool writes them, and
``--check`` (run by tests/test_rs_method_configs.py) exits 1 when a checked-in file differs from what
it would write, or when one is there that it would not write.
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
OUT = osp.join(REPO, 'configs', 'remote_sensing')

# method folder -> (title, base file under configs/_base_/, official code, extra model settings with
# why, extra top-level keys). The extras are the official ADE20k config's method values where the
# method's base leaves them to each benchmark config (ADE20k: the one benchmark every one of these
# methods has an official config for, and its widest common vocabulary).
METHODS: Dict[str, Tuple[str, str, str, List[Tuple[str, str, str]], List[Tuple[str, str]]]] = {
    'sclip': ('SCLIP', 'sclip', 'wangf3014/SCLIP @ b56bd30', [], []),
    'clearclip': ('ClearCLIP', 'clearclip', 'mc-lan/ClearCLIP @ ad68a40', [], []),
    'naclip': ('NACLIP', 'naclip', 'sinahmr/NACLIP @ 0cac3a6', [], []),
    'naclip_pamr': ('NACLIP + PAMR', 'naclip', 'sinahmr/NACLIP @ 0cac3a6',
                    [('pamr_steps', '10', 'its default PAMR, as configs/naclip_pamr/'),
                     ('pamr_dilations', '(8, 16)', '')],
                    [('method', "'NACLIP+PAMR'"), ('paper_key', "'naclip+pamr'")]),
    'scclip': ('SC-CLIP', 'scclip', 'SuleBai/SC-CLIP @ 0417ba9', [], []),
    'resclip': ('ResCLIP', 'resclip', 'yvhangyang/ResCLIP @ 0e085f7',
                [('method', 'dict(temp_thd=0.25, rcs_weights=(2.0, 0.3), sfr_weights=(2.1, 0.7))',
                  'configs/resclip/ade20k.py (its base sets none)')], []),
    'proxyclip': ('ProxyCLIP', 'proxyclip', 'mc-lan/ProxyCLIP @ e7b767f', [], []),
    'gem': ('GEM', 'gem', 'WalBouss/GEM @ 5fa677c on ClearCLIP\'s harness', [], []),
    'sfp': ('SFP', 'sfp', 'Kimsure/SFP @ 2804f5b', [], []),
    'itaclip': ('ITACLIP', 'itaclip', 'm-arda-aydn/ITACLIP @ 521a33c',
                [('text', 'None', 'its LLM definitions/synonyms exist only for its five benchmarks')], []),
    'fsa': ('FSA', 'fsa', 'chi-chi-zx/FSA @ dbd2da5', [], []),
    'cass': ('CASS', 'cass', 'MICV-yonsei/CASS @ 228ecdd',
             [('method', 'dict(global_semantics_weight=0.3, mean_vector_weight=0.05, h_threshold=0.06)',
               'configs/cass/ade20k.py (its base sets 0)')], []),
    'trident': ('Trident', 'trident', 'YuHengsss/Trident @ a93b346',
                [('method', 'dict(refine_neg_cos=False)', 'configs/trident/ade20k.py')], []),
    'corrclip': ('CorrCLIP', 'corrclip', 'zdk258/CorrCLIP @ 103bc18',
                 [('region_masks', "dict(type='sam2')",
                   'no published masks for these sets: SAM2 on the fly (set model.region_masks.checkpoint)')], []),
    # '<dataset>' in a value or why is the dataset's key
    'floss': ('NACLIP + FLOSS', 'naclip', 'yasserben/FLOSS @ ccf1d49',
              [('logit_scale', '100', "FLOSS's NACLIP default, as configs/floss/; it scales the experts' softmax"),
               ('text', "dict(template_ranking=dict(file='data/floss_rankings/template_rankings_naclip_<dataset>.json', "
                        "top_n=4, score='entropy', keys='class', unranked='all_templates'))",
                'computed by FLOSS\'s procedure, none ship: python tools/floss_rankings.py '
                'configs/remote_sensing/floss/<dataset>.py --out data/floss_rankings/template_rankings_naclip_<dataset>.json')],
              [('method', "'NACLIP + FLOSS'"), ('paper_key', "'floss'")]),
}
# Methods that read one name per class (ours, not official: the class files below are derived from
# SegEarth-OV's, first name of each class). Same tuple as METHODS. Background: where SegEarth-OV's
# class 0 is 'background' (14 sets), GroupViT/TCL decide it by their own threshold (their base's
# bg_thresh, as on VOC), CLIPer by its background words ('background') and bkg_thre with the labels
# its VOC21 config's way (reduce_zero_label=False), FreeCP as its VOC21 config (background=True); where the
# background is at another index (Potsdam, Vaihingen 5, UDD5 4), GroupViT/TCL/FreeCP query it as an ordinary
# class (they treat only class 0 as background), CLIPer as BACKGROUND_SETTINGS says; SegEarth-OV's
# prob_thd/bg_idx are not used (FreeCP: its own post-processing allows no prob_thd).
FIRST_NAME_METHODS: Dict[str, Tuple[str, str, str, List[Tuple[str, str, str]], List[Tuple[str, str]]]] = {
    'groupvit': ('GroupViT', 'groupvit', 'NVlabs/GroupViT @ 13b7861', [], []),
    'tcl': ('TCL', 'tcl', 'kakaobrain/tcl @ bc2b551', [], []),
    'cliper': ('CLIPer', 'cliper', 'linsun449/cliper.code @ c05fa41',
               [('templates_file', "'{{fileDirname}}/../../class_names/cliper/car_template.txt'",
                 'semantic_templates of configs/cliper/ade20k.py (its base sets none)')],
               []),
    'freecp': ('FreeCP', 'freecp', 'chenqi1126/FreeCP @ 6946aa7',
               [('text', 'None', 'no Vicuna descriptions of these classes')], []),
}
# The settings of these methods that depend on where the dataset's background is: class 0 (the method's own
# background) or another index, last of its classes (Potsdam, Vaihingen 5, UDD5 4). CLIPer: its background
# words are that class's SegEarth-OV names (CLASS_FILES_CLIPER: first line, then the other classes) and its
# background goes to that label (model.background_label, ours). FreeCP: its VOC21 config's background (class 0
# scores 1 - max of the others) or none; its ambiguity step against the queries' own texts (ours, no
# descriptions); its ADE20k config's rp_thres (its base's is VOC's).
BACKGROUND_SETTINGS = {
    'cliper': lambda bg: ([('reduce_zero_label', 'False', "class 0 is the background: CLIPer's 0, as "
                            'configs/cliper/voc21.py')] if bg == '0' else
                          [('reduce_zero_label', 'True', 'file class c is label c, as configs/cliper/ade20k.py'),
                           ('background_label', bg, "CLIPer's background is the dataset's background class")]),
    'freecp': lambda bg: [('method', f"dict(rp_thres=0.05, ambiguity_texts='queries', background={bg == '0'})",
                           'rp_thres: configs/freecp/ade20k.py; ambiguity_texts: ours (no descriptions); ' +
                           ('background: class 0, as configs/freecp/voc21.py' if bg == '0' else 'no background'))],
}
CLASS_FILES = osp.join('configs', 'class_names', 'remote_sensing', 'first_name')
CLASS_FILES_CLIPER = osp.join('configs', 'class_names', 'remote_sensing', 'cliper')
# (method, dataset) pairs not configured, and why.
SKIPPED: Dict[Tuple[str, str], str] = {}
# Methods with no remote-sensing configs, and why (README, docs/PROTOCOL.md).
NOT_CONFIGURED = {
}

def dataset_facts(key: str) -> Dict[str, str]:
    """The dataset's facts of SegEarth-OV's official config: class file, prob_thd, bg_idx (literal
    text of configs/segearth_ov/<key>.py, defaults of configs/_base_/segearth_ov.py where unset)."""
    path = osp.join(REPO, 'configs', 'segearth_ov', f'{key}.py')
    with open(path) as f:
        text = f.read()
    facts = {'prob_thd': '0.0', 'bg_idx': '0'}  # configs/_base_/segearth_ov.py
    for name in facts:
        match = re.search(rf'\b{name}=([0-9.]+)', text)
        if match:
            facts[name] = match.group(1)
    if f"segearth_ov/{key}.txt'" not in text:
        raise SystemExit(f'error: {path} does not name configs/class_names/segearth_ov/{key}.txt; '
                         'update tools/make_rs_configs.py')
    return facts


def first_names(key: str) -> str:
    """The derived class file of ``key``: the first name of each of SegEarth-OV's classes (its names
    split on ','), one a line, for the segmenters that read one name per class."""
    path = osp.join(REPO, 'configs', 'class_names', 'segearth_ov', f'{key}.txt')
    with open(path) as f:
        lines = f.read().splitlines()
    return ''.join(line.split(',')[0].strip() + '\n' for line in lines if line.strip())


def cliper_background_last(key: str) -> str:
    """CLIPer's class file of a set whose background is not class 0 (ours): SegEarth-OV's names of the
    background class as CLIPer's background words (first line), then the first name of each other class."""
    bg = int(dataset_facts(key)['bg_idx'])
    with open(osp.join(REPO, 'configs', 'class_names', 'segearth_ov', f'{key}.txt')) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    if bg != len(lines) - 1:  # background_label = the class after the file's classes
        raise SystemExit(f'error: {key}: background class {bg} is not the last; update tools/make_rs_configs.py')
    return lines[bg].strip() + '\n' + ''.join(line.split(',')[0].strip() + '\n' for line in lines[:bg])


def config_text(method: str, key: str) -> str:
    first_name = method in FIRST_NAME_METHODS
    title, base, code, extras, top = (FIRST_NAME_METHODS if first_name else METHODS)[method]
    facts = dataset_facts(key)
    lines = [f'# {title} on {key}: ours, not official (no remote-sensing config in {code}).',
             f'# Generated by tools/make_rs_configs.py; do not edit. Dataset facts from SegEarth-OV\'s cfg '
             f'(configs/segearth_ov/{key}.py),',
             f'# method settings from configs/_base_/{base}.py; the split: docs/PROTOCOL.md, '
             '"Remote sensing: every method".',
             f"_base_ = ['../../_base_/datasets/rs_{key}.py', '../../_base_/{base}.py']"]
    lines += [f'{name} = {value}' for name, value in top]
    if method == 'cliper':  # its segmenter needs its own resize (CLIPerLoadImage); the ADE20k config's size
        lines += ['test_pipeline = {{_base_.cliper_pipeline_336}}  # its own loader, as configs/cliper/ade20k.py',
                  'test_dataloader = dict(dataset=dict(pipeline=test_pipeline))']
    lines.append('model = dict(')
    if first_name:
        bg = facts['bg_idx']
        background = ("class 0 'background': the method's own background" if bg == '0' else
                      f"background class {bg} is a text query (only class 0 is thresholded)")
        path = f'remote_sensing/first_name/{key}.txt'
        why = f'ours: first name of each SegEarth-OV class; {background}'
        if method == 'cliper' and bg != '0':
            path = f'remote_sensing/cliper/{key}.txt'
            why = f"ours: background words = SegEarth-OV's names of class {bg}, then the first name of each other class"
        settings = [(f"class_names='{{{{fileDirname}}}}/../../class_names/{path}'", why)]
        extras = extras + BACKGROUND_SETTINGS.get(method, lambda bg: [])(bg)
    else:
        settings = [(f"class_names='{{{{fileDirname}}}}/../../class_names/segearth_ov/{key}.txt'", 'dataset fact'),
                    ("class_name_separator=','", "dataset fact: SegEarth-OV's class files split on ','"),
                    (f'prob_thd={facts["prob_thd"]}', 'dataset fact'),
                    (f'bg_idx={facts["bg_idx"]}', 'dataset fact: where low-confidence pixels go')]
    settings += [(f'{name}={value}'.replace('<dataset>', key), why.replace('<dataset>', key)) for name, value, why in extras]
    for index, (setting, why) in enumerate(settings):
        end = ')' if index == len(settings) - 1 else ','
        lines.append(f'    {setting}{end}' + (f'  # {why}' if why else ''))
    return '\n'.join(lines) + '\n'


def expected_files() -> Dict[str, str]:
    """Every file this tool writes (path relative to the repository) -> its text."""
    from sclip.datasets.remote_sensing import RS_KEYS
    files = {osp.join('configs', 'remote_sensing', method, f'{key}.py'): config_text(method, key)
             for method in [*METHODS, *FIRST_NAME_METHODS] for key in RS_KEYS if (method, key) not in SKIPPED}
    files.update({osp.join(CLASS_FILES, f'{key}.txt'): first_names(key) for key in RS_KEYS})
    files.update({osp.join(CLASS_FILES_CLIPER, f'{key}.txt'): cliper_background_last(key) for key in RS_KEYS
                  if dataset_facts(key)['bg_idx'] != '0' and ('cliper', key) not in SKIPPED})
    return files


def present_files() -> List[str]:
    found = []
    for root, suffix in ((OUT, '.py'), (osp.join(REPO, CLASS_FILES), '.txt'), (osp.join(REPO, CLASS_FILES_CLIPER), '.txt')):
        for folder, _, files in os.walk(root):
            found += [osp.relpath(osp.join(folder, name), REPO) for name in files if name.endswith(suffix)]
    return sorted(found)


def drift() -> List[str]:
    """What differs between the checked-in files and this tool's output (empty: none)."""
    expected = expected_files()
    problems = []
    for path, text in sorted(expected.items()):
        full = osp.join(REPO, path)
        if not osp.isfile(full):
            problems.append(f'{path}: missing')
        else:
            with open(full) as f:
                if f.read() != text:
                    problems.append(f'{path}: differs')
    problems += [f'{path}: not written by this tool' for path in present_files() if path not in expected]
    return problems


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Write configs/remote_sensing/<method>/<dataset>.py.')
    parser.add_argument('--check', action='store_true',
                        help='exit 1 if a checked-in file differs from what would be written')
    args = parser.parse_args(argv)
    if args.check:
        problems = drift()
        for problem in problems:
            print(f'error: {problem} (run python tools/make_rs_configs.py)', file=sys.stderr)
        if problems:
            sys.exit(1)
        print(f'OK: {len(expected_files())} configs and class files under configs/ as generated')
        return
    expected = expected_files()
    for path in present_files():
        if path not in expected:
            os.remove(osp.join(REPO, path))
    for path, text in expected.items():
        full = osp.join(REPO, path)
        os.makedirs(osp.dirname(full), exist_ok=True)
        with open(full, 'w') as f:
            f.write(text)
    print(f'wrote {len(expected)} configs and class files (configs/remote_sensing/, {CLASS_FILES}/)')


if __name__ == '__main__':
    main()
