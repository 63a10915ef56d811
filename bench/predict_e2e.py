"""End-to-end ``cmc predict`` over separate FITS cutouts, alone (the third part of bench/inference.py).

Writes ``--files`` float32 cutouts (TAN WCS, BUNIT, CHANNEL, as ``cmc render`` does) and the
paper's single-channel network (random weights, fitted scaling) into ``--workdir`` once, then
times ``cmc predict DIR --out predictions.csv`` in a subprocess ``--repeat`` times:
cutouts/s, CPU ms per cutout and peak memory.  Usage::

    python bench/predict_e2e.py [--files 10000] [--repeat 2] [--workdir DIR] [--out bench/results]
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

from cmcnn.benchmarks import inference
from cmcore.benchmarks import machine_info, write_result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=float, default=1e4)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cmc-bench-predict-e2e"))
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    work, n = Path(args.workdir), int(args.files)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "model.onnx").exists():
        inference._setup(work)
    folder = work / f"cutouts-{n}"
    if not folder.exists():
        inference.write_cutouts(folder, n)
    load = os.getloadavg()
    runs = [inference._predict_e2e(work / "model.onnx", folder, work / f"pred{k}.csv", inference.ZFLAG)
            for k in range(args.repeat)]
    record = {"benchmark": "predict_e2e", "machine": machine_info(), "load_average_before": load,
              "files": n, "runs": runs}
    lines = [f"{r['cutouts']} cutouts in {r['seconds']:.1f} s: {r['cutouts_per_second']:.0f} cutouts/s, "
             f"{r['cpu_ms_per_cutout']:.2f} CPU ms/cutout, peak {r['peak_rss_mib']:.0f} MiB" for r in runs]
    write_result(args.out, "predict_e2e", record, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
