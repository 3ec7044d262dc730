"""A ``--out`` folder of label maps belongs to the one run that wrote it.

Why: a run on a shorter split into a folder that holds an earlier run's label maps would leave
the extra ones there, and anything reading the folder (the report's image grid, a user's own
script) would take them for this run's. So the folder carries a manifest,
``.sclip-predictions.json``, naming the run (its fingerprint), whether it finished, and the
files it wrote. Before a run writes there, every label map of an earlier run is removed; a
folder holding PNG files that no run of this harness wrote is refused, never emptied.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import List, Optional

from .errors import SCLIPError
from .files import describe_os_error, write_json_atomic

MANIFEST = '.sclip-predictions.json'


def _label_maps(folder: str) -> List[str]:
    return sorted(name for name in os.listdir(folder)
                  if name.lower().endswith('.png') and osp.isfile(osp.join(folder, name)))


def read_manifest(folder: str) -> Optional[dict]:
    """The folder's manifest, or None when it has none or it is damaged."""
    try:
        with open(osp.join(folder, MANIFEST)) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get('fingerprint'), str):
        return None
    return manifest


def claim(folder: str, fingerprint: str, option: str = '--out') -> None:
    """Make ``folder`` this run's: remove an earlier run's label maps, refuse foreign PNGs."""
    os.makedirs(folder, exist_ok=True)
    stale = _label_maps(folder)
    if stale and read_manifest(folder) is None:
        raise SCLIPError(f'{option} {folder} holds {len(stale)} PNG file{"s" * (len(stale) != 1)} that no run of this '
                         f'harness wrote there (e.g. {stale[0]}); pass an empty or new folder, or move them away.')
    path = osp.join(folder, MANIFEST)
    try:
        for name in stale:  # the earlier run's: never shown as this run's
            os.remove(osp.join(folder, name))
        write_json_atomic(path, {'fingerprint': fingerprint, 'complete': False, 'files': []})
    except OSError as error:
        raise describe_os_error(error, folder, 'predictions', option) from None


def seal(folder: str, fingerprint: str, option: str = '--out') -> None:
    """Record the finished run's label maps in the manifest."""
    try:
        write_json_atomic(osp.join(folder, MANIFEST), {'fingerprint': fingerprint, 'complete': True,
                                                       'files': _label_maps(folder)})
    except OSError as error:
        raise describe_os_error(error, folder, 'predictions', option) from None


def finished_label_maps(folder: str, fingerprint: str) -> Optional[List[str]]:
    """The label maps a finished run of ``fingerprint`` wrote in ``folder``, or None when the
    folder holds no finished run of it (for readers such as the report)."""
    manifest = read_manifest(folder) if folder and osp.isdir(folder) else None
    if not manifest or manifest['fingerprint'] != fingerprint or manifest.get('complete') is not True:
        return None
    files = manifest.get('files')
    return [name for name in files if isinstance(name, str) and osp.isfile(osp.join(folder, name))] \
        if isinstance(files, list) else None
