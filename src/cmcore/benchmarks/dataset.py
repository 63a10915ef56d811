"""Benchmark of the dataset builder: images per second end to end, serial vs workers.

On one synthetic universe (the ``small`` preset by default, generated once and
kept in ``--universe``), the same paper-protocol dataset (four projections, four
channels, paper instrument) is built twice from scratch: with ``--workers 1``
(the baseline) and with ``--workers N``.  Both runs include reading the
snapshot, computing per-particle signals and building the cell indexes, i.e.
exactly what ``cmc dataset`` does.  The two files are compared image by image:
the worker count must not change a single pixel.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import machine_info, write_result


def _build(universe: Path, out: Path, per_bin: int, workers: int) -> tuple[float, int]:
    from ..dataset import build_dataset
    from ..datafile import DatasetConfig

    t0 = time.perf_counter()
    summary = build_dataset(universe / "snapshot.hdf5", universe / "halos.h5", out,
                            DatasetConfig(per_bin=per_bin), workers=workers, progress=False)
    return time.perf_counter() - t0, summary.n_images


def _same_images(a: Path, b: Path) -> bool:
    import h5py

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        return all(np.array_equal(fa[f"images/{c}"][:], fb[f"images/{c}"][:]) for c in fa["images"])


def run(universe: Path, *, preset: str = "small", per_bin: int = 5, workers: int = 2,
        log=print) -> dict:
    """Build the dataset serially and with ``workers``; return timings and the ratio."""
    from ..synth import generate

    if not (universe / "synth.json").is_file():
        log(f"generating the {preset!r} synthetic universe in {universe} (once)")
        generate(preset, seed=0, out=universe, progress=False)
    meta = json.loads((universe / "synth.json").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for w in (1, workers):
            files[w] = Path(tmp) / f"w{w}.h5"
            log(f"building with --workers {w}")
            seconds, n = _build(universe, files[w], per_bin, w)
            rows.append({"workers": w, "seconds": seconds, "images": n, "images_per_second": n / seconds})
        identical = _same_images(files[1], files[workers])
    base = rows[0]["images_per_second"]
    for r in rows:
        r["speedup"] = r["images_per_second"] / base
    return {
        "benchmark": "dataset",
        "machine": machine_info(),
        "universe": {"path": str(universe), "preset": meta.get("config", {}).get("name", preset),
                     "n_particles": meta.get("n_particles")},
        "per_bin": per_bin,
        "rows": rows,
        "identical_images": identical,
    }


def format_table(result: dict) -> str:
    m = result["machine"]
    lines = [f"dataset builder, {result['universe']['preset']} universe, per-bin {result['per_bin']}, "
             f"4 projections x {len(('Star', 'Fxs', 'Fxb', 'Ypar'))} channels",
             f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, OpenMP {m['openmp']}",
             f"{'workers':>7} {'images':>7} {'seconds':>9} {'images/s':>9} {'vs serial':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['workers']:>7} {r['images']:>7} {r['seconds']:>9.2f} "
                     f"{r['images_per_second']:>9.1f} {r['speedup']:>8.2f}x")
    lines.append(f"images identical across worker counts: {result['identical_images']}")
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
    parser.add_argument("--workers", type=int, default=2, help="parallel run's workers (default 2)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for dataset.json (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON in ``args.out``."""
    if args.per_bin < 1 or args.workers < 2:
        raise ValueError("--per-bin must be >= 1 and --workers >= 2")
    result = run(args.universe, preset=args.preset, per_bin=args.per_bin, workers=args.workers,
                 log=lambda s: print(s, file=sys.stderr, flush=True))
    table = format_table(result)
    print(table)
    path = write_result(args.out, "dataset", result, table)
    print(f"\nwritten {path} and dataset.txt")
    return 0


