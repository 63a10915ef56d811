"""Record a run of the main job, ``cmc demo``: wall time, peak memory, Table 2 rows, mask scan.

Usage::

    PYTHONPATH=src python bench/demo.py [--out demo-out] [--record bench/results] [--note TEXT]

runs ``cmc demo --out OUT`` as a child process (the command README's quick start gives),
measures its wall time and the peak resident memory of its process tree
(:func:`cmcore.benchmarks.run_child`), and writes ``demo_small.json`` / ``.txt`` (with the
command, commit, machine and load average of every record) from the report the demo wrote (``OUT/report.json``): the Table 2 row of
every network and baseline and the mask-scan summary.  README's "What the main job does"
quotes it, checked by ``tests/test_docs.py``.  A demo folder that already holds a complete run
makes the demo skip every step: use a fresh ``--out`` to time the whole job.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from cmcore.benchmarks import run_child, write_result


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
    seconds, peak = run_child(cmd, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    report = json.loads((args.out / "report.json").read_text())
    minutes, rest = divmod(seconds, 60.0)
    record = {
        "demo_command": f"cmc demo --out {args.out}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "note": args.note,
        "wall": f"{int(minutes)}:{rest:05.2f}",
        "wall_seconds": seconds,
        "peak_rss_mb": round(peak / 2**20),
        "preset": report["preset"],
        "seed": report["seed"],
        "code_version": report["code_version"],
        "rows": {k: v["table2"] for k, v in report["sections"]["table2"]["rows"].items()},
        "mask_scan": report["mask_scan"],
    }
    table = f"cmc demo --out {args.out}: wall {record['wall']}, peak {record['peak_rss_mb']} MB of the process tree"
    path = write_result(args.record, "demo_small", record, table)
    print(f"{table}; written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
