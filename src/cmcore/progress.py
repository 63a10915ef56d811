"""Progress on long work: a bar on a terminal, a line every few seconds in a log.

tqdm redraws its bar with carriage returns several times a second; written to a file
or a pipe that is thousands of frames.  :func:`progress_bar` gives tqdm when standard
error is a terminal and otherwise a plain reporter that prints one line at most every
``interval`` seconds (and one at the end), with the same ``update``/``close``/iteration
interface.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

#: Seconds between two lines of the plain reporter.
INTERVAL = 10.0


class LineProgress:
    """tqdm's interface (``update``, ``close``, iteration, ``with``), one line every few seconds."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False, interval: float = INTERVAL,
                 file: TextIO | None = None, **_: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.disable = total, desc, unit, disable
        self.interval, self.file = interval, file
        self.n = 0
        self._t0 = self._last = time.monotonic()
        self._closed = False

    def _line(self) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self.n / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        eta = ""
        if self.total and rate > 0 and self.n < self.total:
            eta = f", ETA {(self.total - self.n) / rate:.0f} s"
        return f"{self.desc}: {done} {self.unit} ({elapsed:.0f} s, {rate:.3g} {self.unit}/s{eta})"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units; print a line when ``interval`` seconds have passed."""
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self._last >= self.interval:
            self._last = now
            print(self._line(), file=self.file or sys.stderr, flush=True)

    def set_postfix_str(self, s: str) -> None:  # tqdm compatibility; shown in the next line
        self.desc = self.desc.split(" [")[0] + (f" [{s}]" if s else "")

    def close(self) -> None:
        """Print the final line (once)."""
        if not self._closed and not self.disable and self.n:
            print(self._line(), file=self.file or sys.stderr, flush=True)
        self._closed = True

    def __iter__(self) -> Iterator:
        try:
            for item in (() if self.iterable is None else self.iterable):
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False, file: TextIO | None = None, **kwargs: Any):
    """A tqdm bar when ``file`` (standard error by default) is a terminal, else :class:`LineProgress`.

    Parameters
    ----------
    iterable, total, desc, unit, disable
        As for ``tqdm``.
    file
        Where to write (standard error by default).
    **kwargs
        Passed to tqdm (ignored by the plain reporter).
    """
    stream = file or sys.stderr
    if not disable and getattr(stream, "isatty", lambda: False)():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, **kwargs)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, disable=disable, file=stream)
