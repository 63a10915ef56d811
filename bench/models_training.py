"""Record how the shipped networks were trained: epochs, best epoch, wall time, recipe, learning curves.

Usage::

    python bench/models_training.py WORK/runs [--out bench/results]

``WORK`` is the folder of ``bash models/regenerate.sh WORK``.  Reads each run's ``config.json``
and ``history.csv`` (the wall time is the sum of the epochs' times) and writes
``models_training.{json,txt}``: the training budget of the five networks (issue 20: all five in
≤ 3 hours on the 2-core machine).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cmcore.benchmarks import machine_info, write_result

NAMES = ("Star", "Fxs", "Fxb", "Ypar", "multi")
#: Runs recorded beside the shipped ones when present: the multi-channel network trained jointly.
EXTRA = ("multi-joint",)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/models_training.py", description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="WORK/runs of models/regenerate.sh")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)

    from cmcnn.train.history import read_history

    record: dict = {"benchmark": "models_training", "machine": machine_info(), "runs": {}}
    lines = [f"{'network':8s} {'epochs':>6s} {'best':>5s} {'val rms (dex)':>14s} {'minutes':>8s}  recipe"]
    total = 0.0
    for name in NAMES + tuple(n for n in EXTRA if (args.runs / n / "config.json").is_file()):
        run = args.runs / name
        cfg = json.loads((run / "config.json").read_text())
        if "fusion" in cfg:
            f = cfg["fusion"]
            record["runs"][name] = {"fusion": f, "error_scale": cfg.get("error_scale"), "seconds": 0.0}
            lines.append(f"{name:8s} {'fused':>6s} {'':>5s} {f['validation_rms_dex']:14.4f} {0.0:8.1f}  "
                         f"cmc fuse of {', '.join(m['channel'] for m in f['members'])} (weights fitted on validation)")
            continue
        h = read_history(run / "history.csv")
        best = int(np.nanargmin(h["val_loss"]))
        seconds = float(np.nansum(h["seconds"]))
        total += seconds if name in NAMES else 0.0
        recipe = {k: cfg.get(k) for k in ("optimizer", "lr", "schedule", "weight_decay", "augment", "redshift",
                                         "head", "uncertainty", "dropout", "batch_size", "seed", "epochs")}
        record["runs"][name] = {"recipe": recipe, "epochs_run": int(h["epoch"][-1]), "best_epoch": int(h["epoch"][best]),
                                "best_val_rms_dex": float(np.sqrt(h["val_loss"][best])), "seconds": seconds,
                                "history": {k: v.tolist() for k, v in h.items()}, "n_train": cfg.get("n_train"),
                                "error_scale": cfg.get("error_scale")}
        lines.append(f"{name:8s} {int(h['epoch'][-1]):6d} {int(h['epoch'][best]):5d} "
                     f"{np.sqrt(h['val_loss'][best]):14.4f} {seconds / 60:8.1f}  "
                     f"{recipe['optimizer']} lr {recipe['lr']} {recipe['schedule']}, head {recipe['head']}")
    record["total_minutes"] = total / 60
    lines.append(f"the five shipped networks: {total / 60:.1f} min of training (the sum of the epochs' times)")
    write_result(args.out, "models_training", record, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
