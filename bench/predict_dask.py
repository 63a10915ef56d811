"""``cmc predict`` serially and with ``--scheduler local:N`` over the same separate FITS cutouts.

Writes ``--files`` float32 120 × 120 cutouts (TAN WCS, BUNIT, CHANNEL, as ``cmc render``
does) and the paper's single-channel network (random weights, fitted scaling) into
``--workdir`` once (the files of ``bench/predict_e2e.py``), then runs, each in a subprocess
and ``--repeat`` times, interleaved: ``cmc predict DIR --out serial.csv`` (the baseline)
and ``cmc predict DIR --out local.csv --scheduler local:N`` for each N of ``--workers``.
Wall time includes starting Python, the model and, for the cluster, the LocalCluster;
that fixed cost is measured apart on one cutout.  CPU seconds and peak memory come from
``wait4`` (the LocalCluster's workers are its children and are counted).  The tables
must be identical byte for byte.  Usage::

    python bench/predict_dask.py [--files 10000] [--workers 2] [--repeat 2] [--workdir DIR] [--out bench/results]
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
    p.add_argument("--workers", type=int, nargs="+", default=[2])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cmc-bench-predict-e2e"))
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    work, n = Path(args.workdir), int(args.files)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "model.onnx").exists():
        inference._worker("setup", work)  # Keras in a process of its own: wait4 peaks survive a fork
    folder = inference.write_cutouts(work / f"cutouts-{n}", n)
    one = inference.write_cutouts(work / "cutouts-1", 1)
    model = work / "model.onnx"
    variants = {"serial": [*inference.ZFLAG]} | {f"local:{w}": [*inference.ZFLAG, "--scheduler", f"local:{w}"]
                                                for w in args.workers}
    load = os.getloadavg()
    runs: dict[str, list] = {k: [] for k in variants}
    fixed: dict[str, dict] = {}
    for name, extra in variants.items():
        fixed[name] = inference._predict_e2e(model, one, work / f"one-{name}.csv", extra)
    for _ in range(args.repeat):
        for name, extra in variants.items():
            runs[name].append(inference._predict_e2e(model, folder, work / f"{name}.csv", extra))
    same = {name: (work / f"{name}.csv").read_bytes() == (work / "serial.csv").read_bytes() for name in variants}
    best = {name: min(r["seconds"] for r in rs) for name, rs in runs.items()}
    record = {"benchmark": "predict_dask", "machine": machine_info(), "load_average_before": load,
              "load_average_after": os.getloadavg(), "files": n, "fixed_cost_one_cutout": fixed, "runs": runs,
              "speedup_vs_serial_best_wall": {k: best["serial"] / v for k, v in best.items()},
              "tables_identical_to_serial": same,
              "command": "python bench/predict_dask.py " + " ".join(sys.argv[1:])}
    lines = [f"cmc predict over {n} separate 120x120 FITS cutouts, serial vs --scheduler local:N "
             f"({record['machine']['cpu_model']}, {os.cpu_count()} cores, load before {load[0]:.2f})",
             f"{'variant':>10} {'1 cutout [s]':>13} {'best [s]':>9} {'cutouts/s':>10} {'CPU ms/cutout':>14} "
             f"{'peak MiB':>9} {'vs serial':>10} identical"]
    for name in variants:
        r = min(runs[name], key=lambda r: r["seconds"])
        lines.append(f"{name:>10} {fixed[name]['seconds']:13.2f} {r['seconds']:9.2f} {r['cutouts_per_second']:10.0f} "
                     f"{r['cpu_ms_per_cutout']:14.2f} {r['peak_rss_mib']:9.0f} "
                     f"{record['speedup_vs_serial_best_wall'][name]:9.2f}x {same[name]}")
    write_result(args.out, "predict_dask", record, "\n".join(lines))
    print("\n".join(lines))
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
