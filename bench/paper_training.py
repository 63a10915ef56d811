"""The paper recipe's training campaign on a ``paper``-preset dataset (issue 8), run and recorded.

Trains the four single-channel networks and the multi-channel network with the paper's recipe
(``cmc train --recipe paper``: RMSprop, learning rate 0.01 with inverse-time decay, no
redshift input, no augmentation), the multi-channel network also at ``--lr 0.001``, then
evaluates all six with the classical baseline of every channel and the linear calibration::

    for ch in Ypar Fxb Fxs Star; do
        cmc train DATA --channels $ch --recipe paper --out WORK/runs/$ch --epochs E1 --seed 0; done
    cmc train DATA --channels all --recipe paper --out WORK/runs/multi --epochs E2 --seed 0
    cmc train DATA --channels all --recipe paper --out WORK/runs/multi-lr1e-3 --epochs E2 --lr 0.001 --seed 0
    cmc evaluate WORK/runs/Star WORK/runs/Fxs WORK/runs/Fxb WORK/runs/Ypar WORK/runs/multi \
        WORK/runs/multi-lr1e-3 --data DATA --baseline all --calibrate --out WORK/report

and writes ``paper_training.json`` / ``paper_training.txt``: every run's history, epoch times
and best validation loss, and the evaluation report.  ``DATA`` is the dataset the shipped
models were trained on (``cmc synth --preset paper --seed 0`` and ``cmc dataset ... --per-bin
200 --bins 13:15:0.25 --projections x,y,z,diag --seed 0 --instrument paper``, see
``models/README.md``).  Resumable: the trainings resume from their checkpoints.

Usage: ``python bench/paper_training.py --data DATA --work WORK [--epochs-single 20]
[--epochs-multi 10] [--out bench/results]``.
"""
import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from cmcore.benchmarks import machine_info, write_result

#: (run name, channels, extra options) of the campaign.
RUNS = [("Ypar", "Ypar", []), ("Fxb", "Fxb", []), ("Fxs", "Fxs", []), ("Star", "Star", []),
        ("multi", "all", []), ("multi-lr1e-3", "all", ["--lr", "0.001"])]


def _cmc(*args: str) -> None:
    cmd = [sys.executable, "-m", "cmcnn.cli", *args]
    print("running: cmc " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="paper-preset dataset (cmc dataset)")
    p.add_argument("--work", type=Path, required=True, help="folder of the runs and the report")
    p.add_argument("--epochs-single", type=int, default=20, help="epochs of the single-channel networks")
    p.add_argument("--epochs-multi", type=int, default=10, help="epochs of the multi-channel networks")
    p.add_argument("--out", default="bench/results", help="record folder")
    args = p.parse_args()
    runs, report, out = args.work / "runs", args.work / "report", Path(args.out)
    commands = []
    for name, channels, extra in RUNS:
        epochs = args.epochs_multi if channels == "all" else args.epochs_single
        cmd = ["train", str(args.data), "--channels", channels, "--recipe", "paper", "--out", str(runs / name),
               "--epochs", str(epochs), "--seed", "0", *extra, "--no-progress"]
        _cmc(*cmd)
        commands.append("cmc " + " ".join(cmd))
    cmd = ["evaluate", *(str(runs / n) for n in ("Star", "Fxs", "Fxb", "Ypar", "multi", "multi-lr1e-3")),
           "--data", str(args.data), "--baseline", "all", "--calibrate", "--out", str(report)]
    _cmc(*cmd)
    commands.append("cmc " + " ".join(cmd))
    record = {"benchmark": "paper_training", "commands": commands, "runs": {}}
    for name, _, _ in RUNS:
        run = runs / name
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
    machine = machine_info()
    lines = [(f"# Paper-preset training campaign — {machine['cpu_model']}, {machine['usable_cores']} cores, "
             f"{machine['date_utc']}"), "",
             "| network | epochs | best epoch | best val loss | rms (dex) | wall (min) |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in record["runs"].items():
        lines.append(f"| {name} | {r['epochs']} | {r['best_epoch']} | {r['best_val_loss']:.5f} | "
                     f"{r['best_val_loss'] ** 0.5:.3f} | {r['seconds'] / 60:.1f} |")
    table = "\n".join(lines) + "\n\n" + (report / "comparison.md").read_text()
    path = write_result(out, "paper_training", {**record, "machine": machine}, table)
    print(f"wrote {path} and {path.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
