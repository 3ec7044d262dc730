"""What a long run is doing, while it does it: status lines and a progress bar.

Why: on a CPU the first image of a run comes minutes after the command (weights loaded and
hashed, class names encoded with 80 templates each) and an image can take seconds. A silent
terminal looks hung. The tools therefore say each slow step as it starts (``status``, enabled
by ``status_lines`` around a tool's work, off for library use), and a ``Progress`` shows images
done, rate and time left: on a terminal a bar redrawn in place at least every ``refresh``
seconds (a clock thread keeps elapsed time and ETA moving while one image is computed),
elsewhere (a log file, a pipe) a line every ``line_every`` seconds, plus the first and the last.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Callable, Optional

_STATUS = {'enabled': False}
_ACTIVE: list = []  # the bar on screen, cleared before a status line is printed


@contextlib.contextmanager
def status_lines(enabled: bool = True):
    """Inside: ``status`` prints (the tools' runs); outside, library code stays quiet."""
    previous = _STATUS['enabled']
    _STATUS['enabled'] = enabled
    try:
        yield
    finally:
        _STATUS['enabled'] = previous


def is_main_process() -> bool:
    """Rank 0 of torchrun (RANK) or of slurm (SLURM_PROCID, before mmengine sets RANK), or alone."""
    return os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) == '0'


def status(message: str) -> None:
    """One line saying what starts now (``... loading CLIP weights ...``), on the main process."""
    if not _STATUS['enabled'] or not is_main_process():
        return
    stream = sys.stdout
    for bar in _ACTIVE:
        bar.clear()
    stream.write(f'... {message}\n')
    stream.flush()
    for bar in _ACTIVE:
        bar.draw()


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return '?'
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}:{minutes:02d}:{seconds:02d}'


class Progress:
    """``done`` of ``total`` items with rate and time left.

    ``tty``: redraw a bar in place on ``stream`` (default: when ``stream`` is a terminal), from
    ``update`` and from a clock thread every ``refresh`` seconds. ``line``: called with a
    ``progress: ...`` line for the first item, then at most every ``line_every`` seconds, and
    for the last (a log file, or the screen when it is not a terminal).
    """

    def __init__(self, total: int, what: str = 'images', stream=None, tty: Optional[bool] = None,
                 line: Optional[Callable[[str], None]] = None, line_every: float = 30.0, refresh: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, ticker: bool = True, width: int = 24):
        self.total, self.what, self.width = max(int(total), 0), what, width
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, 'isatty', None)
        self.tty = bool(isatty and isatty()) if tty is None else tty
        self.line, self.line_every, self.refresh, self.clock = line, line_every, refresh, clock
        self.start = clock()
        self.done, self.last_line, self.lines_written = 0, None, 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if self.tty:
            _ACTIVE.append(self)
            self.draw()
            if ticker:
                self._thread = threading.Thread(target=self._tick, daemon=True)
                self._thread.start()

    # --- numbers ------------------------------------------------------------------------------
    def rate(self) -> Optional[float]:
        elapsed = self.clock() - self.start
        return self.done / elapsed if self.done and elapsed > 0 else None

    def left(self) -> Optional[float]:
        rate = self.rate()
        return max(self.total - self.done, 0) / rate if rate else None

    def bar_text(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        rate = self.rate()
        return (f'{self.done}/{self.total} {self.what} |{"#" * filled}{"." * (self.width - filled)}| '
                f'{fraction * 100:3.0f}%  {f"{rate:.2f}" if rate else "?"} {self.what}/s  '
                f'{duration(self.clock() - self.start)} elapsed, {duration(self.left())} left')

    def line_text(self) -> str:
        rate = self.rate()
        return (f'progress: {self.done}/{self.total} {self.what}, {rate or 0:.2f} {self.what}/s, '
                f'{duration(self.left() if self.done < self.total else 0)} left')

    # --- output ---------------------------------------------------------------------------------
    def draw(self) -> None:
        if self.tty:
            with self._lock:
                self.stream.write('\r' + self.bar_text() + '\033[K')
                self.stream.flush()

    def clear(self) -> None:
        if self.tty:
            with self._lock:
                self.stream.write('\r\033[K')
                self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.refresh):
            self.draw()

    def update(self, done: int) -> None:
        """``done`` items finished in all (not an increment)."""
        self.done = min(int(done), self.total) if self.total else int(done)
        self.draw()
        now = self.clock()
        due = self.last_line is None or now - self.last_line >= self.line_every or self.done >= self.total
        if self.line is not None and due and self.done:
            self.last_line = now
            self.lines_written += 1
            self.line(self.line_text())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.tty and self in _ACTIVE:
            self.draw()
            with self._lock:
                self.stream.write('\n')
                self.stream.flush()
            _ACTIVE.remove(self)


def close_all() -> None:
    """End the bars on screen (a run that failed mid-way: its error line comes on a clean line)."""
    for bar in list(_ACTIVE):
        bar.close()
