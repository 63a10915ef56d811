"""Recorded run of the synthetic-universe generator: wall time, peak memory, size.

Runs ``cmc synth --preset P --seed S`` in a child process (the same command a user
types) and records its wall-clock time, the child's peak resident memory
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``), the particle counts and file sizes,
with the machine beside them.  This is a scale figure, not a ratio: the
documentation quotes it from ``bench/results/synth-<preset>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import machine_info, write_result


def run(preset: str, seed: int, out: Path, keep: bool = False, figure: Path | None = None,
        log=print) -> dict:
    """Generate the universe ``preset`` into ``out`` in a child process and measure it.

    With ``figure``, the relations figure is drawn there (after the timing) and the
    offsets from the literature (:func:`cmcore.synth.plots.plot_relations`) are
    recorded too.
    """
    cmd = [sys.executable, "-m", "cmcnn.cli", "synth", "--preset", preset, "--seed", str(seed),
           "--out", str(out), "--no-progress"]
    log("running: " + " ".join(cmd[1:]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    meta = json.loads((out / "synth.json").read_text())
    sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    found = None
    if figure is not None:
        from ..synth.plots import plot_relations

        log(f"measuring the relations; figure {figure}")
        _, found = plot_relations(out, figure)
    if not keep:
        for p in out.iterdir():
            p.unlink()
    return {
        "benchmark": "synth",
        "machine": machine_info(),
        "preset": preset,
        "seed": seed,
        "wall_seconds": seconds,
        "peak_rss_bytes": peak_kib * 1024,
        "peak_rss_note": None if before < peak_kib else "an earlier child was larger: upper bound",
        "n_targets": meta["n_targets"],
        "n_field_realised": meta["n_field_realised"],
        "n_particles": meta["n_particles"],
        "file_bytes": sizes,
        "generator_seconds": meta["seconds"],
        "literature_offsets": found,
    }


def format_table(r: dict) -> str:
    m = r["machine"]
    n = r["n_particles"]
    return "\n".join([
        f"cmc synth --preset {r['preset']} --seed {r['seed']}",
        f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {m['date_utc']}",
        f"wall time {r['wall_seconds']:.1f} s, peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB",
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
                     log=log)
    else:
        with tempfile.TemporaryDirectory(prefix=".synth-", dir=args.out if args.out.is_dir() else None) as tmp:
            result = run(args.preset, args.seed, Path(tmp), figure=args.relations, log=log)
    table = format_table(result)
    print(table)
    path = write_result(args.out, f"synth-{args.preset}", result, table)
    print(f"\nwritten {path}")
    return 0


