"""Record ``cmc reproduce`` end to end: wall time, peak memory, every step's time and estimate.

Usage::

    python bench/reproduce.py [--scale quick] [--out repro-quick] [--record bench/results] [--note TEXT]

runs ``cmc reproduce --scale SCALE --out OUT --no-progress`` as a child process (the command
``docs/reproduce.md`` gives), measures its wall time and the peak resident memory of its process
tree (:func:`cmcore.benchmarks.run_child`), and writes ``reproduce_SCALE.json`` / ``.txt``:

* the estimate the command prints before it starts (its cost model, for a fresh folder), in
  total and per step, beside the time every step took (from the step manifests in
  ``OUT/steps``);
* the Table 2 rows of the report (``OUT/report.json``).

``docs/reproduce.md`` quotes the record, checked by ``tests/test_docs.py``.  ``OUT`` must not
hold an earlier run: its finished steps would be skipped, not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cmcnn.workflows.reproduce import SCALES, plan
from cmcnn.workflows.steps import duration
from cmcore.benchmarks import run_child, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick", help="grid scale (default quick)")
    parser.add_argument("--out", type=Path, default=Path("repro-quick"), help="run folder (default repro-quick)")
    parser.add_argument("--record", type=Path, default=Path("bench/results"), help="record folder")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args(argv)
    if (args.out / "steps").exists():
        parser.error(f"{args.out} already holds a reproduce run: its steps would be skipped, not timed")
    workers = min(os.cpu_count() or 1, 8)  # the command's default
    estimates = {s.name: (s.label or s.name, s.estimate)
                 for s in plan(args.out, SCALES[args.scale], workers=workers, progress=False)}
    cmd = [sys.executable, "-m", "cmcnn.cli", "reproduce", "--scale", args.scale, "--out", str(args.out),
           "--no-progress"]
    print("running: cmc " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    seconds, peak = run_child(cmd, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})

    steps = []
    for name, (label, estimate) in estimates.items():
        manifest = json.loads((args.out / "steps" / f"{name}.json").read_text())
        if manifest.get("state") != "done":
            raise RuntimeError(f"step {name} did not finish: {manifest.get('state')}")
        steps.append({"step": name, "label": label, "seconds": manifest["seconds"], "estimate_seconds": estimate})
    report = json.loads((args.out / "report.json").read_text())
    rows = {k: v["table2"] for k, v in report["sections"]["table2"]["rows"].items()}
    estimate = sum(s["estimate_seconds"] for s in steps)
    result = {"benchmark": f"reproduce_{args.scale}", "scale": args.scale, "note": args.note,
              "wall_seconds": seconds, "peak_bytes": peak, "estimate_seconds": estimate,
              "steps_seconds": sum(s["seconds"] for s in steps), "steps": steps, "table2": rows}
    lines = [(f"cmc reproduce --scale {args.scale}: {duration(seconds)} wall ({seconds:.1f} s), "
             f"peak {peak / 2**30:.2f} GiB of the process tree; the estimate printed at the start "
             f"was {duration(estimate)} ({estimate:.0f} s)"),
             "", f"{'step':<28} {'seconds':>9} {'estimate':>9}"]
    lines += [f"{s['step']:<28} {s['seconds']:9.1f} {s['estimate_seconds']:9.1f}" for s in steps]
    lines += ["", f"{'Table 2 row':<16} {'n':>5} {'RMS %':>8} {'bias %':>8}"]
    lines += [f"{k:<16} {r['n']:>5} {r['rms_pct']:8.2f} {r['frac_bias_pct']:+8.2f}"
              for k, r in rows.items() if r.get("rms_pct") is not None]
    table = "\n".join(lines)
    path = write_result(args.record, f"reproduce_{args.scale}", result, table)
    print(table)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
