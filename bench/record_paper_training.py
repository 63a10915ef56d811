"""Record a paper-preset training campaign (issue 8) into bench/results/paper_training.{json,md}.

The campaign itself is these commands (2-core CPU, resumable; rerun with larger --epochs to extend)::

    cmc synth --preset paper --seed 0 --out universe
    cmc dataset universe/snapshot.hdf5 --halos universe/halos.h5 --out paper.h5 --per-bin 200 \\
        --bins 13:15:0.25 --projections x,y,z,diag --workers 2 --seed 0 --instrument paper
    for ch in Ypar Fxb Fxs Star; do cmc train paper.h5 --channels $ch --out runs/$ch --epochs E1 --seed 0; done
    cmc train paper.h5 --channels all --out runs/multi --epochs E2 --seed 0
    cmc train paper.h5 --channels all --out runs/multi-lr1e-3 --epochs E2 --lr 0.001 --seed 0
    cmc evaluate runs/Star runs/Fxs runs/Fxb runs/Ypar runs/multi runs/multi-lr1e-3 --data paper.h5 \\
        --baseline all --calibrate --out report

Usage: ``python bench/record_paper_training.py RUNS_DIR REPORT_DIR [--out bench/results]``.
"""
import argparse
import csv
import json
import sys
from pathlib import Path

from cmcore.benchmarks import machine_info
from cmcore.fileio import atomic_write


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs")
    p.add_argument("report")
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    runs, report, out = Path(args.runs), Path(args.report), Path(args.out)
    record = {"benchmark": "paper_training", "machine": machine_info(),
              "commands": __doc__.split("::")[1].split("Usage")[0].strip(), "runs": {}}
    for run in sorted(p for p in runs.iterdir() if (p / "config.json").is_file()):
        cfg = json.loads((run / "config.json").read_text())
        with open(run / "history.csv") as fh:
            hist = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
        best = min(hist, key=lambda h: h["val_loss"])
        record["runs"][run.name] = {
            "channels": cfg["channels"], "epochs": len(hist), "best_epoch": int(best["epoch"]),
            "best_val_loss": best["val_loss"], "seconds": sum(h["seconds"] for h in hist),
            "median_epoch_seconds": sorted(h["seconds"] for h in hist)[len(hist) // 2],
            "n_train": cfg["n_train"], "n_validation": cfg["n_validation"], "data_sha256": cfg["data_sha256"],
            "history": hist}
    metrics = json.loads((report / "metrics.json").read_text())
    record["evaluation"] = {"split": metrics["split"], "central_range": metrics["central_range"],
                            "estimators": [{k: m[k] for k in ("name", "kind", "table2", "per_bin")}
                                           | ({"calibration": m["calibration"]} if "calibration" in m else {})
                                           for m in metrics["estimators"]]}
    table = (report / "comparison.md").read_text()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "paper_training.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    lines = [f"# Paper-preset training campaign — {record['machine']['cpu_model']}, "
             f"{record['machine']['usable_cores']} cores, {record['machine']['date_utc']}", "",
             "| network | epochs | best epoch | best val loss | rms (dex) | wall (min) |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in record["runs"].items():
        lines.append(f"| {name} | {r['epochs']} | {r['best_epoch']} | {r['best_val_loss']:.5f} | "
                     f"{r['best_val_loss'] ** 0.5:.3f} | {r['seconds'] / 60:.1f} |")
    with atomic_write(out / "paper_training.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n\n" + table)
    print(f"wrote {out / 'paper_training.json'} and {out / 'paper_training.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
