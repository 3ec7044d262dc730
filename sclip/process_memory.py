"""This process's peak resident memory, and resetting that peak (Linux).

Why: "ours needs no more memory than the official code on the same input" is a claim about the
whole process (weights, activations, allocator slack), which only the kernel's high-water mark of
the resident set (``VmHWM``) sees. Each side is measured in a process of its own, so that neither
inherits the other's peak; writing ``5`` to ``/proc/self/clear_refs`` resets the mark to the
current resident set, so that the peak of inference is told apart from the peak of loading the
weights (a checkpoint and its model are both resident for a moment).
"""
from __future__ import annotations

from typing import Optional

from .errors import SCLIPError

STATUS = '/proc/self/status'


def _status_bytes(field: str) -> Optional[int]:
    """``field`` of /proc/self/status (``VmHWM``, ``VmRSS``) in bytes; None where there is none."""
    try:
        with open(STATUS) as handle:
            for line in handle:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        return None
    return None


def peak_rss() -> int:
    """The peak resident set of this process since it started or since ``reset_peak_rss``."""
    value = _status_bytes('VmHWM')
    if value is None:
        raise SCLIPError(f'--memory: {STATUS} has no VmHWM; peak memory is measured on Linux only.')
    return value


def current_rss() -> int:
    """The resident set of this process now."""
    value = _status_bytes('VmRSS')
    if value is None:
        raise SCLIPError(f'--memory: {STATUS} has no VmRSS; peak memory is measured on Linux only.')
    return value


def reset_peak_rss() -> None:
    """Set the peak to the current resident set (``/proc/self/clear_refs``, value 5)."""
    try:
        with open('/proc/self/clear_refs', 'w') as handle:
            handle.write('5')
    except OSError as error:
        raise SCLIPError(f'--memory: cannot reset the peak resident set (/proc/self/clear_refs: '
                         f'{error.strerror}); peak memory is measured on Linux only.') from None
