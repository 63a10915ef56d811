"""Recorded run of the synthetic-universe generator: wall time, peak memory, size, workers.

Runs ``cmc synth --preset P --seed S --workers N`` in a child process (the same
command a user types) for each N asked for, and records its wall-clock time, the
peak resident memory of its whole process tree (the command and its workers,
:func:`cmcore.benchmarks.run_child`), the particle counts, file sizes and the
SHA-256 of the snapshot and the catalogue, with the machine beside them.  Equal
hashes across N show the output does not depend on the number of workers.  The
documentation quotes it from ``bench/results/synth-<preset>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..fileio import file_sha256
from . import machine_info, run_child, write_result


def run_once(preset: str, seed: int, out: Path, workers: int, log=print) -> dict:
    """Generate the universe ``preset`` into ``out`` with ``workers`` processes in a child process
    and measure it: wall time, peak memory of the process tree, file sizes and hashes."""
    cmd = [sys.executable, "-m", "cmcnn.cli", "synth", "--preset", preset, "--seed", str(seed),
           "--out", str(out), "--workers", str(workers), "--no-progress"]
    log("running: " + " ".join(cmd[1:]))
    seconds, peak = run_child(cmd, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    meta = json.loads((out / "synth.json").read_text())
    log(f"  {seconds:.1f} s, peak {peak / 2**30:.2f} GiB; hashing the outputs")
    return {
        "workers": workers,
        "wall_seconds": seconds,
        "peak_rss_bytes": peak,
        "generator_seconds": meta["seconds"],
        "n_targets": meta["n_targets"],
        "n_field_realised": meta["n_field_realised"],
        "n_particles": meta["n_particles"],
        "file_bytes": {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()},
        "sha256": {name: file_sha256(out / name) for name in ("snapshot.hdf5", "halos.h5")},
    }


def run(preset: str, seed: int, out: Path, keep: bool = False, figure: Path | None = None,
        workers: Sequence[int] = (1,), log=print) -> dict:
    """Generate the universe ``preset`` into ``out`` once per worker count and measure each run.

    Each run replaces the previous one's files (the last is kept with ``keep``).
    With ``figure``, the relations figure of the last run is drawn there (after the
    timing) and the offsets from the literature
    (:func:`cmcore.synth.plots.plot_relations`) are recorded too.
    """
    runs = [run_once(preset, seed, out, int(n), log=log) for n in workers]
    found = None
    if figure is not None:
        from ..synth.plots import plot_relations

        log(f"measuring the relations; figure {figure}")
        _, found = plot_relations(out, figure)
    if not keep:
        for p in out.iterdir():
            p.unlink()
    first = runs[0]
    return {
        "benchmark": "synth",
        "machine": machine_info(),
        "preset": preset,
        "seed": seed,
        "runs": runs,
        "identical_across_workers": all(r["sha256"] == first["sha256"] for r in runs),
        # the first run's figures at the top level, as older records hold them
        "wall_seconds": first["wall_seconds"],
        "peak_rss_bytes": first["peak_rss_bytes"],
        "n_targets": first["n_targets"],
        "n_field_realised": first["n_field_realised"],
        "n_particles": first["n_particles"],
        "file_bytes": first["file_bytes"],
        "generator_seconds": first["generator_seconds"],
        "literature_offsets": found,
    }


def format_table(r: dict) -> str:
    m = r["machine"]
    n = r["n_particles"]
    runs = r.get("runs") or [{"workers": 1, "wall_seconds": r["wall_seconds"],
                              "peak_rss_bytes": r["peak_rss_bytes"]}]
    base = next((x["wall_seconds"] for x in runs if x["workers"] == 1), None)
    return "\n".join([
        f"cmc synth --preset {r['preset']} --seed {r['seed']}",
        f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {m['date_utc']}",
        *[f"--workers {x['workers']}: wall time {x['wall_seconds']:.1f} s"
          + (f" ({base / x['wall_seconds']:.2f}x --workers 1)" if base else "")
          + f", peak RSS of the process tree {x['peak_rss_bytes'] / 2**30:.2f} GiB" for x in runs],
        *([f"outputs identical across worker counts (SHA-256 of snapshot.hdf5 and halos.h5): "
           f"{r['identical_across_workers']}"] if len(runs) > 1 else []),
        f"targets {r['n_targets']}, field haloes {r['n_field_realised']}",
        f"particles: {n.get('gas', 0):,} gas, {n.get('dm', 0):,} dm, {n.get('stars', 0):,} stars "
        f"({sum(n.values()) / 1e6:.1f} M)",
        f"snapshot.hdf5 {r['file_bytes'].get('snapshot.hdf5', 0) / 1e9:.2f} GB",
        *[f"{k} vs {v['source']}: " + ", ".join(f"{name} x{x['ratio']:.2f} (n={x['n']})"
                                               for name, x in v.items()
                                               if isinstance(x, dict) and x.get("n"))
          for k, v in (r.get("literature_offsets") or {}).items()],
    ])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the synth benchmark (shared by ``cmc bench synth`` and the script)."""
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "paper"),
                        help="preset to generate (default small)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="worker counts to run, in this order (default 1)")
    parser.add_argument("--universe", type=Path, default=None,
                        help="folder to generate into and keep (default: a temporary one, removed)")
    parser.add_argument("--relations", type=Path, default=None, metavar="FIGURE",
                        help="also draw the relations figure there and record the offsets "
                             "from the literature")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for synth-<preset>.json/.txt (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON and table in ``args.out``."""
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.universe is not None:
        result = run(args.preset, args.seed, args.universe, keep=True, figure=args.relations,
                     workers=args.workers, log=log)
    else:
        with tempfile.TemporaryDirectory(prefix=".synth-", dir=args.out if args.out.is_dir() else None) as tmp:
            result = run(args.preset, args.seed, Path(tmp), figure=args.relations, workers=args.workers,
                         log=log)
    table = format_table(result)
    print(table)
    path = write_result(args.out, f"synth-{args.preset}", result, table)
    print(f"\nwritten {path}")
    return 0


