"""Record a run of the main job, ``cmc demo``: wall time, peak memory, Table 2 rows, mask scan.

Usage::

    PYTHONPATH=src python bench/demo.py [--out demo-out] [--record bench/results] [--note TEXT]

runs ``cmc demo --out OUT`` as a child process (the command README's quick start gives),
measures its wall time and peak resident memory (``getrusage(RUSAGE_CHILDREN)``), and writes
``demo_small.json`` from the report the demo wrote (``OUT/report.json``): the Table 2 row of
every network and baseline and the mask-scan summary.  README's "What the main job does"
quotes it, checked by ``tests/test_docs.py``.  A demo folder that already holds a complete run
makes the demo skip every step: use a fresh ``--out`` to time the whole job.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from cmcore.benchmarks import git_commit, machine_info
from cmcore.fileio import atomic_write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="demo folder (default demo-out)")
    parser.add_argument("--record", type=Path, default=Path("bench/results"), help="record folder")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args(argv)
    if (args.out / "report.json").exists():
        parser.error(f"{args.out} already holds a demo run: its steps would be skipped, not timed")
    cmd = [sys.executable, "-m", "cmcnn.cli", "demo", "--out", str(args.out)]
    print("running: cmc " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads((args.out / "report.json").read_text())
    minutes, rest = divmod(seconds, 60.0)
    record = {
        "command": f"cmc demo --out {args.out}",
        "recorded_by": "python bench/demo.py",
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": machine_info(),
        "note": args.note,
        "wall": f"{int(minutes)}:{rest:05.2f}",
        "wall_seconds": seconds,
        "peak_rss_mb": round(peak_kib / 1024),
        "preset": report["preset"],
        "seed": report["seed"],
        "code_version": report["code_version"],
        "rows": {k: v["table2"] for k, v in report["sections"]["table2"]["rows"].items()},
        "mask_scan": report["mask_scan"],
    }
    args.record.mkdir(parents=True, exist_ok=True)
    path = args.record / "demo_small.json"
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wall {record['wall']}, peak {record['peak_rss_mb']} MB; written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
