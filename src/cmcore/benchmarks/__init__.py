"""Benchmark implementations, run by ``bench/*.py`` and ``cmc bench``.

Every figure is reported as a ratio against a baseline measured in the same run
on the same data, next to a description of the machine (:func:`machine_info`).
"""
from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from collections.abc import Sequence, Callable
from pathlib import Path

import numpy as np

__all__ = ["machine_info", "best_time", "parse_time_log", "record_context", "run_child", "write_result"]

#: 1-, 5- and 15-minute load averages when the benchmark package was imported: before the run.
LOAD_BEFORE = os.getloadavg() if hasattr(os, "getloadavg") else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Describe the machine and software a benchmark ran on."""
    from .. import __version__, _kernels

    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "openmp": _kernels.have_openmp(),
        "openmp_max_threads": _kernels.max_threads(),
        "sph_avx2": _kernels.sph_uses_avx2(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cmc": __version__,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def best_time(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Run ``fn`` ``repeat`` times; return the shortest wall time [s] and the last result."""
    best = float("inf")
    result = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def git_commit() -> str | None:
    """The commit of the working tree the benchmark runs from (``+dirty`` with local changes), or None."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


#: The commit when the benchmark package was imported: the code the run loaded.
COMMIT_BEFORE = git_commit()


def record_context() -> dict:
    """What every record states besides its figures: the command line, the git commit and the
    load average before (import of this package) and after (now).

    ``commit`` is the commit at import, the code the run loaded; if the tree changed during
    the run, ``commit_at_end`` says to what.
    """
    context = {"command": " ".join(sys.argv), "commit": COMMIT_BEFORE,
               "load_average": {"before": LOAD_BEFORE,
                                "after": os.getloadavg() if hasattr(os, "getloadavg") else None}}
    end = git_commit()
    if end != COMMIT_BEFORE:
        context["commit_at_end"] = end
    return context


def write_result(folder: str | os.PathLike, name: str, result: dict, table: str,
                 default: Callable[[object], object] | None = None) -> Path:
    """Write ``NAME.json`` (the result, with the command line, the git commit and the machine) and
    ``NAME.txt`` (the table).

    Both files are written atomically (:func:`cmcore.fileio.atomic_write`): an
    interrupted benchmark never leaves a truncated record.  Returns the JSON path.
    """
    from ..fileio import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result = {**result, **record_context()}
    result.setdefault("machine", machine_info())
    path = folder / f"{name}.json"
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(result, indent=1, default=default))
    with atomic_write(folder / f"{name}.txt") as tmp:
        tmp.write_text(table + "\n")
    return path


def run_child(cmd: Sequence[str], env: dict | None = None, interval: float = 0.2) -> tuple[float, int]:
    """Run ``cmd`` to completion; return its wall time [s] and the peak memory of its process tree [bytes].

    The tree's resident memory (the command and every process it starts, e.g. worker
    processes) is summed every ``interval`` seconds with psutil; without psutil the
    largest single descendant's peak (``RUSAGE_CHILDREN``) is returned, a lower bound.

    Raises
    ------
    subprocess.CalledProcessError
        The command failed.
    """
    import resource
    import subprocess

    t0 = time.perf_counter()
    child = subprocess.Popen(list(cmd), env=env)
    peak = 0
    try:
        import psutil
    except ImportError:
        psutil = None
    while child.poll() is None:
        if psutil is not None:
            try:
                procs = [psutil.Process(child.pid)]
                procs += procs[0].children(recursive=True)
                total = 0
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
        time.sleep(interval)
    seconds = time.perf_counter() - t0
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, list(cmd))
    if psutil is None:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return seconds, peak


def parse_time_log(text: str) -> dict:
    """Wall time [s], peak RSS [bytes] and the command from a GNU ``time -v`` log, and the
    ``[  t s] stage`` lines :func:`cmcore.halos.find_halos` printed (seconds from its start)."""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    cmd = re.search(r'Command being timed: "(.*)"', text)
    status = re.search(r"Exit status: (\d+)", text)
    if not (wall and rss):
        raise ValueError("not a GNU time -v log (no wall clock time or maximum resident set size)")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = 60.0 * seconds + float(part)
    stages = [[float(t), text] for t, text in re.findall(r"^\[\s*([\d.]+) s\] (.*)$", text, flags=re.M)]
    return {"wall_seconds": seconds, "peak_rss_bytes": int(rss.group(1)) * 1024,
            "timed_command": cmd.group(1) if cmd else None,
            "exit_status": int(status.group(1)) if status else None,
            "stages": stages}


def run_module(module, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run a benchmark module: its ``add_arguments(parser)`` then ``run_from_args(args)``.

    Every benchmark module of :mod:`cmcore.benchmarks` and :mod:`cmcnn.benchmarks` provides
    these two functions; ``cmc bench NAME``, ``python -m <module>`` and ``bench/NAME.py`` all
    come here, so a benchmark's options and behaviour are the same whichever way it runs.
    """
    import argparse

    doc = (module.__doc__ or "").strip().splitlines()
    parser = argparse.ArgumentParser(prog=prog or f"python -m {module.__name__}",
                                     description=doc[0] if doc else None)
    module.add_arguments(parser)
    return int(module.run_from_args(parser.parse_args(argv)))
