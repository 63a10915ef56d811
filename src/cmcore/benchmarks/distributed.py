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

At a scale where the serial build is a separate, recorded job (the ``paper``
preset's peaks at 13.5 GB), ``--reference DATASET`` replaces the serial build by
that finished file: the settings are read from it (``--per-bin`` may lower the
haloes per bin; the selection is then a prefix of the reference's, and each
image depends only on its halo, projection and seed), and every image built
here is compared with the reference's image of the same halo and projection.
``--indexed`` puts the indexed copy elsewhere than beside a read-only snapshot,
``--types`` indexes only the particle types the channels read, and
``--index-log`` records an index built beforehand under ``/usr/bin/time -v``
(its command, wall time, peak memory) instead of building it here.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import machine_info, parse_time_log, write_result


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


def _same_as_reference(built: Path, reference: Path) -> bool:
    """Whether every image of ``built`` equals the reference's image of the same halo and projection."""
    import h5py

    def keys(f) -> list[tuple[int, bytes]]:
        return list(zip(f["labels/halo_id"][:].tolist(), f["labels/projection"][:].tolist()))

    with h5py.File(built, "r") as fb, h5py.File(reference, "r") as fr:
        where = {k: i for i, k in enumerate(keys(fr))}
        missing = [k for k in keys(fb) if k not in where]
        if missing:
            raise ValueError(f"{reference} lacks {len(missing)} of the images built (first: {missing[0]}); "
                             "is it a build of the same universe with at least --per-bin haloes per bin?")
        rows = np.array([where[k] for k in keys(fb)])
        return all(np.array_equal(fb[f"images/{c}"][:], fr[f"images/{c}"][:][rows]) for c in fb["images"])


def _reference(path: Path, halos: Path, per_bin: int) -> tuple[object, dict]:
    """Settings of the reference dataset with ``per_bin`` haloes per bin, and what to record of it."""
    import h5py

    from ..datafile import DatasetConfig
    from ..fileio import file_sha256

    with h5py.File(path, "r") as f:
        config = DatasetConfig.from_json(f.attrs["config"])
        record = {"path": str(path), "per_bin": config.per_bin, "images": int(f["labels/halo_id"].shape[0]),
                  **{k: str(f.attrs[k]) for k in ("source_snapshot_sha256", "source_halos_sha256")}}
    if per_bin > config.per_bin:
        raise ValueError(f"--per-bin {per_bin} exceeds the reference's {config.per_bin}")
    if file_sha256(halos) != record["source_halos_sha256"]:
        raise ValueError(f"{path} was built from another halo catalogue than {halos}")
    return dataclasses.replace(config, per_bin=per_bin), record


def _time_log(path: Path) -> dict:
    """Command, wall time [s] and peak resident memory [MB] from a ``/usr/bin/time -v`` log."""
    try:
        t = parse_time_log(path.read_text())
    except ValueError:
        t = None
    if t is None or t["timed_command"] is None or t["exit_status"] != 0:
        raise ValueError(f"{path} is not the /usr/bin/time -v log of a successful run")
    return {"command": t["timed_command"], "seconds": t["wall_seconds"],
            "peak_rss_mb": t["peak_rss_bytes"] / 1024.0**2}


def run(universe: Path, *, preset: str = "small", per_bin: int = 5, workers: int = 2, indexed: Path | None = None,
        types: Sequence[str] | None = None, reference: Path | None = None, index_log: Path | None = None,
        log=print) -> dict:
    """Index the universe once, then time the serial build (or take ``reference``) and 1 and
    ``workers`` Dask workers."""
    from dask.distributed import Client, LocalCluster

    from ..dataset import build_dataset
    from ..datafile import DatasetConfig
    from ..indexed import write_indexed
    from ..synth import generate

    if not (universe / "synth.json").is_file():
        log(f"generating the {preset!r} synthetic universe in {universe} (once)")
        generate(preset, seed=0, out=universe, progress=False)
    meta = json.loads((universe / "synth.json").read_text())
    indexed = indexed or universe / "snapshot.indexed.hdf5"
    index_seconds = None
    index_record = _time_log(index_log) if index_log else None
    if not indexed.is_file():
        if index_log:
            raise ValueError(f"--index-log {index_log} given, but {indexed} does not exist")
        log(f"indexing {universe / 'snapshot.hdf5'} (once)")
        t0 = time.perf_counter()
        write_indexed(universe / "snapshot.hdf5", indexed, particle_types=types, progress=False)
        index_seconds = time.perf_counter() - t0
    elif index_record:
        index_seconds = index_record["seconds"]
    import h5py

    with h5py.File(indexed, "r") as f:
        indexed_types = {k: int(f[k]["positions"].shape[0]) for k in f if "positions" in f[k]}
    rows = []
    reference_record = None
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        if reference is not None:
            config, reference_record = _reference(reference, universe / "halos.h5", per_bin)
        else:
            config = DatasetConfig(per_bin=per_bin)
            files["serial"] = Path(tmp) / "serial.h5"
            log("building serially from the original snapshot")
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            summary = build_dataset(universe / "snapshot.hdf5", universe / "halos.h5", files["serial"], config,
                                    progress=False)
            seconds = time.perf_counter() - t0
            rows.append({"run": "serial, original snapshot", "workers": 1, "seconds": seconds,
                         "images": summary.n_images, "images_per_second": summary.n_images / seconds,
                         "peak_rss_mb_per_worker": None, "load_average_1min": [load, os.getloadavg()[0]]})
        for w in (1, workers):
            key = f"dask{w}"
            files[key] = Path(tmp) / f"{key}.h5"
            log(f"building from the indexed snapshot on {w} Dask worker(s)")
            with LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                summary = build_dataset(indexed, universe / "halos.h5", files[key], config, progress=False,
                                        scheduler=cluster.scheduler_address)
                seconds = time.perf_counter() - t0
                peaks = sorted(client.run(_peak_rss_mb).values())
            rows.append({"run": f"dask, indexed snapshot, {w} worker(s)", "workers": w, "seconds": seconds,
                         "images": summary.n_images, "images_per_second": summary.n_images / seconds,
                         "peak_rss_mb_per_worker": peaks, "load_average_1min": [load, os.getloadavg()[0]]})
        if reference is not None:
            log(f"comparing with {reference}")
            identical = all(_same_as_reference(files[k], reference) for k in files)
        else:
            identical = all(_same_images(files["serial"], files[k]) for k in files if k != "serial")
    result = {
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
    if reference is not None:
        result.update({"reference": reference_record, "indexed_types": indexed_types, "index": index_record,
                       "config": json.loads(config.to_json())})
    return result


def format_table(result: dict) -> str:
    m = result["machine"]
    projections = len(result["config"]["projections"]) if "config" in result else 4
    channels = len(result["config"]["channels"]) if "config" in result else 4
    lines = [f"dataset on dask.distributed from the indexed snapshot, {result['universe']['preset']} universe, "
             f"per-bin {result['per_bin']}, {projections} projections x {channels} channels",
             f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, OpenMP {m['openmp']}",
             f"{'run':<38} {'images':>7} {'seconds':>9} {'images/s':>9} {'peak RSS per worker [MB]':>26}"
             + (f" {'load avg':>11}" if "load_average_1min" in result["rows"][0] else "")]
    for r in result["rows"]:
        peaks = ", ".join(f"{p:.0f}" for p in r["peak_rss_mb_per_worker"]) if r["peak_rss_mb_per_worker"] else "-"
        load = (" {:>5.1f}-{:<5.1f}".format(*r["load_average_1min"]) if "load_average_1min" in r else "")
        lines.append(f"{r['run']:<38} {r['images']:>7} {r['seconds']:>9.2f} {r['images_per_second']:>9.1f} "
                     f"{peaks:>26}{load}")
    index = result.get("index")
    if index:
        lines.append(f"cmc index ({', '.join(result['indexed_types'])}; run before, under /usr/bin/time -v): "
                     f"{index['seconds']:.0f} s, peak RSS {index['peak_rss_mb'] / 1024:.2f} GB, "
                     f"{result['indexed_bytes'] / 1e9:.2f} GB written")
    elif result["index_seconds"] is not None:
        lines.append(f"cmc index: {result['index_seconds']:.1f} s, {result['indexed_bytes'] / 1e9:.2f} GB")
    ref = result.get("reference")
    if ref:
        lines.append(f"serial reference: {ref['path']} (per-bin {ref['per_bin']}, {ref['images']} images, built from "
                     f"the original snapshot); images compared by halo and projection")
    lines.append(f"images identical to the serial build: {result['identical_images']}")
    if result.get("note"):
        lines.append(f"note: {result['note']}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the benchmark (shared by ``cmc bench distributed`` and the script)."""
    from .dataset import add_universe_arguments

    add_universe_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, help="the larger cluster's workers (default 2)")
    parser.add_argument("--indexed", type=Path, default=None,
                        help="indexed snapshot, built there if absent (default UNIVERSE/snapshot.indexed.hdf5)")
    parser.add_argument("--types", default=None, metavar="gas,stars",
                        help="particle types to index (default: every type the snapshot has)")
    parser.add_argument("--index-log", type=Path, default=None,
                        help="/usr/bin/time -v log of the 'cmc index' run that built --indexed: recorded instead "
                             "of indexing here")
    parser.add_argument("--reference", type=Path, default=None,
                        help="serial build of the universe (cmc dataset) to compare with instead of building "
                             "serially here; its settings are used, with --per-bin haloes per bin")
    parser.add_argument("--name", default="distributed",
                        help="record name: NAME.json and NAME.txt in --out (default distributed)")
    parser.add_argument("--note", default=None, help="remark recorded with the result (e.g. the machine's load)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for NAME.json (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON in ``args.out``."""
    if args.per_bin < 1 or args.workers < 2:
        raise ValueError("--per-bin must be >= 1 and --workers >= 2")
    types = [t.strip() for t in args.types.split(",") if t.strip()] if args.types else None
    result = run(args.universe, preset=args.preset, per_bin=args.per_bin, workers=args.workers,
                 indexed=args.indexed, types=types, reference=args.reference, index_log=args.index_log,
                 log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.note:
        result["note"] = args.note
    table = format_table(result)
    print(table)
    path = write_result(args.out, args.name, result, table)
    print(f"\nwritten {path} and {args.name}.txt")
    return 0


