"""Writing results safely: atomic files with the usual permissions, writable work dirs, cell locks.

Why: a result file is either whole or absent (never half-written by a full disk or a kill),
readable by the rest of a cluster group (``mkstemp`` alone makes it 0600), and two processes
sharing a work dir never write the same result at once.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import os.path as osp
import tempfile
from typing import Optional, Tuple

from .errors import SCLIPError


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it; 0666 minus the umask.
    On any failure the temporary file is removed and ``path`` is untouched."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix='.', suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str, payload) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2))


# a write that failed because of where it writes (the user's to fix), not because of a bug
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


def write_result_text(path: str, text: str, what: str, option: str = '--work-dir') -> None:
    """``write_text_atomic``, with a failed write as one line naming ``path`` (see below)."""
    try:
        write_text_atomic(path, text)
    except OSError as error:
        raise describe_os_error(error, path, what, option) from None


def describe_os_error(error: OSError, path: str, what: str, option: str = '--work-dir') -> SCLIPError:
    """One line for a failed write: the path, the reason and the fix (``option`` names where
    the user chose the path)."""
    reason = {errno.EACCES: 'permission denied', errno.EROFS: 'read-only file system',
              errno.ENOSPC: 'no space left on the device', errno.EDQUOT: 'disk quota exceeded'}.get(
        error.errno, error.strerror or str(error))
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    fix = f'free some space or pass another {option}' if full else f'pass a writable {option}'
    return SCLIPError(f'{path}: cannot write {what} ({reason}); {fix}.')


def check_output_name(option: str, path: str, suffixes: Tuple[str, ...], why: str = '') -> None:
    """``path`` names a file (not a folder) ending in one of ``suffixes``, or one line naming
    ``option``; checked before any work, so a bad name never costs a run."""
    if not path or osp.isdir(path) or not path.lower().endswith(suffixes):
        raise SCLIPError(f"{option} {path or repr(path)}: pass a file name ending in {suffixes[0]}{why}.")


def ensure_writable(folder: str, what: str = 'results', option: str = '--work-dir') -> None:
    """Create ``folder`` and prove a file can be written there, or raise one line naming it.

    The probe writes a byte: on a full disk an empty file can still be created, only its
    data cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix='.write-test-')
        try:
            os.write(handle, b'\0')
        finally:
            os.close(handle)
            os.remove(probe)
    except OSError as error:
        raise describe_os_error(error, folder, what, option) from None


class CellLock:
    """An exclusive lock on a result folder (``<folder>/.lock``), released when the process ends.

    ``acquire()`` returns False (and sets ``holder``) when another process holds it. The file
    is removed on release (a finished work dir keeps no ``.lock``): it is unlinked while still
    locked, and ``acquire()`` only keeps a lock on the file that is still at ``path``, so a
    process that opened the file just before its removal retries on a new one.
    """

    def __init__(self, folder: str):
        self.path = osp.join(folder, '.lock')
        self.handle = None
        self.holder: Optional[str] = None

    def acquire(self) -> bool:
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        while True:
            handle = open(self.path, 'a+')
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                self.holder = handle.read().strip() or 'another process'
                handle.close()
                return False
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()  # locked a file its holder had just removed: lock the current one
        try:  # who holds it, for the message of a second process; the lock itself is the flock
            handle.seek(0)
            handle.truncate()
            handle.write(f'pid {os.getpid()} on {os.uname().nodename}')
            handle.flush()
        except OSError:
            pass
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            try:
                try:
                    os.remove(self.path)  # still ours: removed before it is unlocked
                except OSError:
                    pass
                fcntl.flock(handle, fcntl.LOCK_UN)
            finally:
                try:
                    handle.close()
                except OSError:  # the holder line could not reach a full disk; the lock ends anyway
                    pass

    def __enter__(self) -> 'CellLock':
        if not self.acquire():
            raise SCLIPError(f'{osp.dirname(self.path)} is being written by {self.holder} (lock '
                             f'{self.path}); wait for it to finish or pass another --work-dir.')
        return self

    def __exit__(self, *exc) -> None:
        self.release()
