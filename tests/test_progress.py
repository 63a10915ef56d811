"""Progress output: a bar on a terminal, a few plain lines in a log."""
from __future__ import annotations

import io

from cmcore.progress import LineProgress, progress_bar


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_plain_reporter_prints_a_line_per_interval_not_per_update(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("cmcore.progress.time.monotonic", clock)
    out = io.StringIO()
    bar = progress_bar(total=1000, desc="rendering", unit="img", file=out)
    assert isinstance(bar, LineProgress)  # a StringIO is no terminal
    for _ in range(1000):
        clock.t += 0.05  # 50 s in all, one update every 50 ms
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert 5 <= len(lines) <= 6  # every 10 s, plus the last one
    assert "\r" not in out.getvalue()
    assert lines[-1].startswith("rendering: 1000/1000 img")


def test_iteration_and_disable():
    out = io.StringIO()
    assert list(progress_bar(range(5), desc="x", file=out)) == [0, 1, 2, 3, 4]
    assert out.getvalue().startswith("x: 5/5")
    quiet = io.StringIO()
    with progress_bar(total=3, file=quiet, disable=True) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""


def test_terminal_gets_tqdm():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    bar = progress_bar(total=2, file=Tty())
    assert type(bar).__name__ == "tqdm" or "tqdm" in type(bar).__module__
    bar.close()


def test_iterates_numpy_arrays():
    import numpy as np

    assert [int(v) for v in progress_bar(np.arange(3), file=io.StringIO())] == [0, 1, 2]
