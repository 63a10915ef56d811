"""Benchmark of the dataset builder: wall time and peak memory end to end, per source and workers.

On one synthetic universe (the ``small`` preset by default, generated once and
kept in ``--universe``), the same paper-protocol dataset (four projections, four
channels, paper instrument) is built from scratch by ``cmc dataset`` in a child
process (the command a user types) once per run asked for, ``SOURCE:WORKERS``:
``memory:1`` (the baseline: the whole snapshot in memory, one thread),
``memory:N``, ``index:N`` (each halo reads only its columns from an indexed copy
built on demand, :mod:`cmcore.dataset`).  Each run's time includes everything
the command does (reading, signals, indexing, rendering, assembling); its
memory is the peak of the whole process tree (:func:`cmcore.benchmarks.run_child`).
The files are compared image by image: neither the source nor the worker count
may change a single pixel.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import machine_info, run_child, write_result


def _build(universe: Path, out: Path, per_bin: int, source: str, workers: int) -> tuple[float, int, int]:
    """``cmc dataset`` on ``universe`` in a child process: wall time, peak tree memory, images."""
    import h5py

    cmd = [sys.executable, "-m", "cmcnn.cli", "dataset", str(universe / "snapshot.hdf5"), "--halos",
           str(universe / "halos.h5"), "--out", str(out), "--per-bin", str(per_bin), "--workers", str(workers),
           "--source", source, "--no-progress"]
    seconds, peak = run_child(cmd, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    with h5py.File(out, "r") as f:
        n = int(f["labels/halo_id"].shape[0])
    return seconds, peak, n


def _same_images(a: Path, b: Path) -> bool:
    import h5py

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        if sorted(fa["images"]) != sorted(fb["images"]):
            return False
        for c in fa["images"]:
            da, db = fa[f"images/{c}"], fb[f"images/{c}"]
            if da.shape != db.shape:
                return False
            for s in range(0, da.shape[0], 512):
                if not np.array_equal(da[s:s + 512], db[s:s + 512]):
                    return False
    return True


def parse_run(text: str) -> tuple[str, int]:
    """``SOURCE:WORKERS`` (``memory:2``, ``index:1``) as (source, workers)."""
    source, _, workers = text.partition(":")
    if source not in ("memory", "index") or not workers.isdigit() or int(workers) < 1:
        raise argparse.ArgumentTypeError(f"a run is memory:N or index:N with N >= 1, got {text!r}")
    return source, int(workers)


def run(universe: Path, *, preset: str = "small", per_bin: int = 5,
        runs: tuple[tuple[str, int], ...] = (("memory", 1), ("memory", 2), ("index", 2)),
        scratch: Path | None = None, log=print) -> dict:
    """Build the dataset once per run (source, workers); return timings, peak memory and identity."""
    from ..synth import generate

    if not (universe / "synth.json").is_file():
        log(f"generating the {preset!r} synthetic universe in {universe} (once)")
        generate(preset, seed=0, out=universe, progress=False)
    meta = json.loads((universe / "synth.json").read_text())
    rows = []
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        first = None
        for i, (source, workers) in enumerate(runs):
            out = Path(tmp) / f"run{i}.h5"
            log(f"cmc dataset --source {source} --workers {workers}")
            seconds, peak, n = _build(universe, out, per_bin, source, workers)
            log(f"  {seconds:.1f} s, peak {peak / 2**30:.2f} GiB")
            if first is None:
                first, same = out, True
            else:
                same = _same_images(first, out)
                out.unlink()
            rows.append({"source": source, "workers": workers, "seconds": seconds, "images": n,
                         "images_per_second": n / seconds, "peak_rss_bytes": peak, "identical_to_first": same})
    base = rows[0]["seconds"]
    for r in rows:
        r["speedup"] = base / r["seconds"]
    return {
        "benchmark": "dataset",
        "machine": machine_info(),
        "universe": {"path": str(universe), "preset": meta.get("config", {}).get("name", preset),
                     "n_particles": meta.get("n_particles")},
        "per_bin": per_bin,
        "rows": rows,
        "identical_images": all(r["identical_to_first"] for r in rows),
    }


def format_table(result: dict) -> str:
    m = result["machine"]
    first = result["rows"][0]
    lines = [(f"cmc dataset end to end, {result['universe']['preset']} universe, per-bin {result['per_bin']}, "
              "4 projections x 4 channels"),
             f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, OpenMP {m['openmp']}, {m['date_utc']}",
             f"{'source':>7} {'workers':>7} {'images':>7} {'seconds':>9} {'images/s':>9} "
             f"{'vs ' + first['source'] + ':' + str(first['workers']):>10} {'peak GiB':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['source']:>7} {r['workers']:>7} {r['images']:>7} {r['seconds']:>9.2f} "
                     f"{r['images_per_second']:>9.1f} {r['speedup']:>9.2f}x {r['peak_rss_bytes'] / 2**30:>9.2f}")
    lines.append("peak: resident memory of the whole process tree (command and workers), sampled every 0.2 s")
    lines.append(f"images identical across sources and worker counts: {result['identical_images']}")
    return "\n".join(lines)


def add_universe_arguments(parser: argparse.ArgumentParser) -> None:
    """``--universe``, ``--preset`` and ``--per-bin``: the data of the dataset benchmarks."""
    parser.add_argument("--universe", type=Path, default=Path("bench/results/universe-small"),
                        help="synthetic universe folder, generated there if absent "
                             "(default bench/results/universe-small)")
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "paper"),
                        help="preset used when the universe must be generated (default small)")
    parser.add_argument("--per-bin", type=int, default=5, help="haloes per mass bin (default 5)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the dataset benchmark (shared by ``cmc bench dataset`` and the script)."""
    add_universe_arguments(parser)
    parser.add_argument("--runs", type=parse_run, nargs="+",
                        default=[("memory", 1), ("memory", 2), ("index", 2)], metavar="SOURCE:WORKERS",
                        help="builds to time, in this order; the first is the baseline "
                             "(default memory:1 memory:2 index:2)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder for the datasets while they are compared (default: the system's temporary)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for dataset.json (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON in ``args.out``."""
    if args.per_bin < 1:
        raise ValueError("--per-bin must be >= 1")
    result = run(args.universe, preset=args.preset, per_bin=args.per_bin, runs=tuple(args.runs),
                 scratch=args.scratch, log=lambda s: print(s, file=sys.stderr, flush=True))
    table = format_table(result)
    print(table)
    path = write_result(args.out, "dataset", result, table)
    print(f"\nwritten {path} and dataset.txt")
    return 0


