"""Record README's tour: the commands that made the shipped models, and what they printed.

Usage::

    python bench/tour.py --logs models-work/synth.log models-work/dataset.log models-work/regenerate.log \\
        --demo demo-out [--out bench/results]

The logs are the outputs of the commands of ``models/regenerate.sh models-work`` (``cmc synth``,
``cmc dataset``, then the script itself); TensorFlow's own log lines are dropped.  Then
``cmc predict Ypar DEMO/dataset.h5`` and ``cmc interpret mask multi DEMO/dataset.h5`` on the
demo's most massive test cluster run here and their output is recorded too.  Writes
``tour.txt`` (the lines README's tour quotes, checked by ``tests/test_docs.py``) and
``tour.json`` (the same with the machine and the date).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from cmcore.benchmarks import machine_info, write_result

#: Lines of TensorFlow, XLA, absl and CUDA probing, not cmc's.
_NOISE = re.compile(r"^(I0000|E0000|W0000|WARNING: All log|[IWE]\d{4} |.*cuda|.*oneDNN|.*absl|.*tensorflow)")


def _clean(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip() and not _NOISE.match(line)]


def _run(cmd: list[str]) -> list[str]:
    res = subprocess.run([sys.executable, "-m", "cmcnn.cli", *cmd], capture_output=True, text=True, check=True)
    return _clean(res.stdout + res.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/tour.py", description=__doc__.splitlines()[0])
    ap.add_argument("--logs", nargs="+", type=Path, required=True, help="outputs of the regenerate.sh commands")
    ap.add_argument("--demo", type=Path, required=True, help="a cmc demo folder (its dataset.h5)")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)

    from cmcnn.train.data import ImageSource

    lines: list[str] = []
    for log in args.logs:
        lines += _clean(log.read_text())
    data = args.demo / "dataset.h5"
    with ImageSource(data, ["Star", "Fxs", "Fxb", "Ypar"], cache="none") as src:
        rows = src.rows("test")
        index = int(rows[np.argmax(src.log10_m200[rows])])
    predict = ["predict", "Ypar", str(data), "--out", "predictions.csv", "--no-progress"]
    interpret = ["interpret", "mask", "multi", str(data), "--index", str(index), "--out", "maps", "--no-progress"]
    for cmd in (predict, interpret):
        lines.append("$ cmc " + " ".join(c for c in cmd if c != "--no-progress"))
        lines += _run(cmd)
    record = {"benchmark": "tour", "machine": machine_info(), "logs": [str(p) for p in args.logs],
              "demo": str(args.demo), "lines": lines}
    write_result(args.out, "tour", record, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
