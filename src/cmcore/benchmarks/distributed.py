"""Benchmark of dataset rendering on dask.distributed from an indexed snapshot.

On one synthetic universe (``small`` by default), the snapshot is indexed once
(``cmc index``, kept beside it as ``snapshot.indexed.hdf5``); then the same
paper-protocol dataset is built from scratch three times: serially from the
original snapshot (``--workers 1``, the baseline: what ``cmc dataset`` does
without a cluster), and from the indexed snapshot on a LocalCluster of 1 and of
N worker processes (``--scheduler``).  Times exclude starting the cluster and
include everything else (reading, signals, indexes, rendering, writing).  The
peak resident memory of each worker process is read from the workers at the
end.  The files are compared image by image: they must be identical.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import machine_info, write_result


def _peak_rss_mb() -> float:
    """Peak resident memory of this process [MB]: ``VmHWM`` on Linux (``ru_maxrss`` survives
    the exec of a spawned worker and would report its parent's peak), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _same_images(a: Path, b: Path) -> bool:
    import h5py

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        return all(np.array_equal(fa[f"images/{c}"][:], fb[f"images/{c}"][:]) for c in fa["images"])


def run(universe: Path, *, preset: str = "small", per_bin: int = 5, workers: int = 2, log=print) -> dict:
    """Index the universe once, then time the serial build and 1 and ``workers`` Dask workers."""
    from dask.distributed import Client, LocalCluster

    from ..dataset import DatasetConfig, build_dataset
    from ..indexed import write_indexed
    from ..synth import generate

    if not (universe / "synth.json").is_file():
        log(f"generating the {preset!r} synthetic universe in {universe} (once)")
        generate(preset, seed=0, out=universe, progress=False)
    meta = json.loads((universe / "synth.json").read_text())
    indexed = universe / "snapshot.indexed.hdf5"
    index_seconds = None
    if not indexed.is_file():
        log(f"indexing {universe / 'snapshot.hdf5'} (once)")
        t0 = time.perf_counter()
        write_indexed(universe / "snapshot.hdf5", indexed, progress=False)
        index_seconds = time.perf_counter() - t0
    config = DatasetConfig(per_bin=per_bin)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {"serial": Path(tmp) / "serial.h5"}
        log("building serially from the original snapshot")
        t0 = time.perf_counter()
        summary = build_dataset(universe / "snapshot.hdf5", universe / "halos.h5", files["serial"], config,
                                progress=False)
        seconds = time.perf_counter() - t0
        rows.append({"run": "serial, original snapshot", "workers": 1, "seconds": seconds,
                     "images": summary.n_images, "images_per_second": summary.n_images / seconds,
                     "peak_rss_mb_per_worker": None})
        for w in (1, workers):
            key = f"dask{w}"
            files[key] = Path(tmp) / f"{key}.h5"
            log(f"building from the indexed snapshot on {w} Dask worker(s)")
            with LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                t0 = time.perf_counter()
                summary = build_dataset(indexed, universe / "halos.h5", files[key], config, progress=False,
                                        scheduler=cluster.scheduler_address)
                seconds = time.perf_counter() - t0
                peaks = sorted(client.run(_peak_rss_mb).values())
            rows.append({"run": f"dask, indexed snapshot, {w} worker(s)", "workers": w, "seconds": seconds,
                         "images": summary.n_images, "images_per_second": summary.n_images / seconds,
                         "peak_rss_mb_per_worker": peaks})
        identical = all(_same_images(files["serial"], files[k]) for k in files if k != "serial")
    return {
        "benchmark": "distributed",
        "machine": machine_info(),
        "universe": {"path": str(universe), "preset": meta.get("config", {}).get("name", preset),
                     "n_particles": meta.get("n_particles")},
        "per_bin": per_bin,
        "index_seconds": index_seconds,
        "indexed_bytes": indexed.stat().st_size,
        "rows": rows,
        "identical_images": identical,
    }


def format_table(result: dict) -> str:
    m = result["machine"]
    lines = [f"dataset on dask.distributed from the indexed snapshot, {result['universe']['preset']} universe, "
             f"per-bin {result['per_bin']}, 4 projections x 4 channels",
             f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, OpenMP {m['openmp']}",
             f"{'run':<38} {'images':>7} {'seconds':>9} {'images/s':>9} {'peak RSS per worker [MB]':>26}"]
    for r in result["rows"]:
        peaks = ", ".join(f"{p:.0f}" for p in r["peak_rss_mb_per_worker"]) if r["peak_rss_mb_per_worker"] else "-"
        lines.append(f"{r['run']:<38} {r['images']:>7} {r['seconds']:>9.2f} {r['images_per_second']:>9.1f} "
                     f"{peaks:>26}")
    if result["index_seconds"] is not None:
        lines.append(f"cmc index: {result['index_seconds']:.1f} s, {result['indexed_bytes'] / 1e9:.2f} GB")
    lines.append(f"images identical to the serial build: {result['identical_images']}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the benchmark (shared by ``cmc bench distributed`` and the script)."""
    parser.add_argument("--universe", type=Path, default=Path("bench/results/universe-small"),
                        help="synthetic universe folder, generated there if absent "
                             "(default bench/results/universe-small)")
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "paper"),
                        help="preset used when the universe must be generated (default small)")
    parser.add_argument("--per-bin", type=int, default=5, help="haloes per mass bin (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="the larger cluster's workers (default 2)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for distributed.json (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON in ``args.out``."""
    if args.per_bin < 1 or args.workers < 2:
        raise ValueError("--per-bin must be >= 1 and --workers >= 2")
    result = run(args.universe, preset=args.preset, per_bin=args.per_bin, workers=args.workers,
                 log=lambda s: print(s, file=sys.stderr, flush=True))
    table = format_table(result)
    print(table)
    path = write_result(args.out, "distributed", result, table)
    print(f"\nwritten {path} and distributed.txt")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bench/dataset_dask.py``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
