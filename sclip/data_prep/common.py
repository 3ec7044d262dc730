"""File helpers shared by the converters: safe reads, atomic writes, a simple worker pool.

Why: a conversion runs over thousands of downloaded files. A corrupt one must stop it with
one line naming that file (``SCLIPError``), and a killed or failed run must never leave a
half-written label behind that a later evaluation would read as valid; so every output is
written to a temporary file in the same folder and renamed into place. Downloads are not
trusted: inside ``confined(src, dst)`` every path read is resolved (symlinks, ``../``) and must
lie in SRC or DST, every path written in DST, and the worker processes end with their parent.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import filecmp
import os
import os.path as osp
import shutil
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

import numpy as np
from PIL import Image

from ..errors import SCLIPError

Task = TypeVar('Task')
Result = TypeVar('Result')


def reason(error: BaseException) -> str:
    """``Type: first line of the message``, for error messages that stay on one line."""
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0]}' if text else type(error).__name__


# --- confinement: what a conversion may read and write ------------------------------------------

_ROOTS: Dict[str, Tuple[str, ...]] = {'read': (), 'write': ()}


@contextlib.contextmanager
def confined(src: str, dst: str):
    """Inside, reads must resolve into SRC or DST (converters read what they wrote) and writes into DST."""
    previous = dict(_ROOTS)
    set_roots({'read': (osp.realpath(src), osp.realpath(dst)), 'write': (osp.realpath(dst),)})
    try:
        yield
    finally:
        set_roots(previous)


def set_roots(roots: Dict[str, Tuple[str, ...]]) -> None:
    _ROOTS.update(roots)


def _inside(real: str, roots: Sequence[str]) -> bool:
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def check_read(path: str) -> str:
    """``path``, when it resolves into SRC or DST; else one line (a ``../`` entry of a split or list
    file, or a symlink in the download pointing out of it, is never followed)."""
    if _ROOTS['read']:
        real = osp.realpath(path)
        if not _inside(real, _ROOTS['read']):
            raise SCLIPError(f'{path}: resolves to {real}, outside SRC and DST ({" and ".join(_ROOTS["read"])}); '
                             'a ../ entry in a split or list file or a symlink out of the download is not '
                             'followed: fix or remove it.')
    return path


def check_write(path: str) -> str:
    """``path``, when it resolves into DST; else one line (nothing is written outside DST)."""
    if _ROOTS['write']:
        real = osp.realpath(path)
        if not _inside(real, _ROOTS['write']):
            raise SCLIPError(f'{path}: resolves to {real}, outside DST {_ROOTS["write"][0]}; nothing is written '
                             'there: fix the ../ entry of the split or list file, or the symlink in DST.')
    return path


def open_text(path: str):
    """A split or list file, opened for reading once ``check_read`` allows it."""
    require_file(path)
    return open(path)


def require_file(path: str) -> None:
    check_read(path)
    if not osp.isfile(path):
        raise SCLIPError(f'{path}: not found; check the source folder (see data/README.md).')


def read_label_png(path: str) -> np.ndarray:
    """A single-channel 8-bit label map; SCLIPError naming ``path`` if it cannot be decoded."""
    require_file(path)
    try:
        with Image.open(path) as image:
            label = np.array(image)
    except Exception as error:  # noqa: BLE001 - PIL raises several types for bad files
        raise SCLIPError(f'{path}: cannot be read as a label PNG ({reason(error)}); '
                         'it is corrupt or truncated: download/unzip it again.') from None
    if label.ndim != 2 or label.dtype != np.uint8:
        raise SCLIPError(f'{path}: expected a single-channel 8-bit label PNG, got shape {label.shape} '
                         f'{label.dtype}; is this the right folder?')
    return label


def read_mat(path: str, key: str) -> np.ndarray:
    """Variable ``key`` of a MATLAB file; SCLIPError naming ``path`` if unreadable or absent."""
    from scipy.io import loadmat
    require_file(path)
    try:
        content = loadmat(path, variable_names=[key])
    except Exception as error:  # noqa: BLE001 - scipy raises several types for bad files
        raise SCLIPError(f'{path}: cannot be read as a .mat file ({reason(error)}); '
                         'it is corrupt or truncated: download/unpack it again.') from None
    if key not in content:
        raise SCLIPError(f'{path}: has no variable {key!r}; is this the right annotation folder?')
    return content[key]


def temporary_path(path: str) -> str:
    """A hidden name beside ``path`` that no dataset suffix (``*.png``, ``*_labelTrainIds.png``) matches."""
    folder, name = osp.split(path)
    return osp.join(folder, f'.{name}.{os.getpid()}.tmp')


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(temporary path)`` then rename it to ``path``; never leaves a partial file.
    A read-only or full DST is one line naming the file."""
    check_write(path)
    tmp = temporary_path(path)
    try:
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        from ..files import describe_os_error
        raise describe_os_error(error, path, 'the prepared data', 'DST') from None
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def write_label_png(label: np.ndarray, path: str) -> str:
    """Save a uint8 label map as a grey PNG (mmseg reads it unchanged)."""
    write_atomically(path, lambda tmp: Image.fromarray(label.astype(np.uint8)).save(tmp, format='PNG'))
    return path


def copy_file(src: str, dst: str) -> str:
    """Copy ``src`` to ``dst`` unless ``dst`` already holds the same bytes (a differing file of the
    same size is replaced: sizes alone would keep a stale or tampered copy)."""
    require_file(src)
    check_write(dst)
    if not (osp.isfile(dst) and osp.getsize(dst) == osp.getsize(src) and filecmp.cmp(src, dst, shallow=False)):
        write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))
    return dst


def copy_pair(pair: Tuple[str, str]) -> str:
    """``copy_file(*pair)``, for ``run_parallel``."""
    return copy_file(*pair)


def lookup_table(mapping: dict, default: Optional[int] = None, size: int = 256) -> np.ndarray:
    """uint8 table ``lut[value] = mapping[value]``; other values map to ``default``, or to
    themselves when ``default`` is None (what the official converters' per-key loops do)."""
    lut = np.arange(size, dtype=np.int64) if default is None else np.full(size, default, np.int64)
    for value, target in mapping.items():
        lut[value] = target
    if (lut < 0).any() or (lut > 255).any():
        raise ValueError('label lookup table values must fit in uint8')
    return lut.astype(np.uint8)


def same_folder(a: str, b: str) -> bool:
    return osp.abspath(a) == osp.abspath(b) or (osp.exists(a) and osp.exists(b) and osp.samefile(a, b))


def first_folder(candidates: Iterable[str], required: Sequence[str] = ()) -> Optional[str]:
    """The first existing folder among ``candidates`` that holds every path in ``required``."""
    for folder in candidates:
        if osp.isdir(folder) and all(osp.exists(osp.join(folder, r)) for r in required):
            return folder
    return None


def files_with_suffix(folder: str, suffix: str, recursive: bool = False) -> List[str]:
    """Sorted paths under ``folder`` whose name ends with ``suffix`` (hidden temp files skipped)."""
    found = []
    for root, dirs, names in os.walk(folder):
        found += [osp.join(root, n) for n in names if n.endswith(suffix) and not n.startswith('.')]
        if not recursive:
            break
        dirs.sort()
    return sorted(found)


def choose_splits(requested: Optional[Sequence[str]], available: Sequence[str], what: str) -> List[str]:
    """``requested`` (each must be available) or every available split; SCLIPError if none."""
    if requested:
        missing = [s for s in requested if s not in available]
        if missing:
            raise SCLIPError(f'split {" ".join(missing)} not found in {what}; '
                             f'found: {" ".join(available) or "none"}.')
        return list(requested)
    if not available:
        raise SCLIPError(f'no split found in {what}; check SRC (see data/README.md).')
    return list(available)


def _end_with_parent(parent: int) -> None:
    """In a worker: die when the parent process dies (killed, terminated), never write on alone.
    Linux: the kernel's parent-death signal; elsewhere: a thread watching the parent's id."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.2)
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _worker_start(parent: int, roots: Dict[str, Tuple[str, ...]]) -> None:
    _end_with_parent(parent)
    set_roots(roots)


def run_parallel(function: Callable[[Task], Result], tasks: Sequence[Task], workers: int) -> List[Result]:
    """``[function(t) for t in tasks]`` on ``workers`` processes; the first error cancels the rest.
    Workers keep the confinement and end with this process."""
    if workers <= 1 or len(tasks) < 2:
        return [function(task) for task in tasks]
    pool = ProcessPoolExecutor(min(workers, len(tasks)), initializer=_worker_start,
                               initargs=(os.getpid(), dict(_ROOTS)))
    try:
        chunk = max(1, min(64, len(tasks) // (4 * workers)))
        return list(pool.map(function, tasks, chunksize=chunk))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
