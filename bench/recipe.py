"""Measure the training recipe ingredient by ingredient (issue 20), on one dataset's test split.

Usage::

    python bench/recipe.py --data WORK/paper.h5 --work WORK/recipe --runs Ypar-survey,Ypar-paper-head,...
        [--epochs 30] [--name recipe] [--out bench/results]

Each run is ``CHANNEL-VARIANT``: the survey recipe (:meth:`cmcnn.train.recipe.TrainConfig.survey`)
with one ingredient changed (:data:`VARIANTS`).  Runs train in ``WORK/<run>`` (resumable: rerun the
command to continue), then predict the test split; both classical baselines of the channel (image
+ z and image only) are fitted on the same dataset.  The record holds, per run, the settings, the
learning curve, the wall time, and Table 2 on the test images with 13.25 < log M200 < 14.5
(bootstrap errors over haloes), the coverage of the predicted errors, and the same for the
baselines; it is rewritten after every run, so an interrupted campaign keeps what it measured.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from cmcore.benchmarks import machine_info, write_result

#: One change to the survey recipe each; "survey" is the recipe itself.
VARIANTS: dict[str, dict] = {
    "survey": {},
    "paper-head": {"head": "paper"},
    "no-redshift": {"redshift": False},
    "no-augment": {"augment": False},
    "no-weight-decay": {"weight_decay": 0.0},
    "inverse-time": {"schedule": "inverse-time", "decay": 1e-4},
    "lr3e-4": {"lr": 3e-4},
    "wd1e-3": {"weight_decay": 1e-3},
    "dropout0.3": {"dropout": 0.3},
    "paper": None,  # the paper's recipe: RMSprop, inverse-time decay, paper head, image only, no augmentation
}
CHANNELS = {"Star": ["Star"], "Fxs": ["Fxs"], "Fxb": ["Fxb"], "Ypar": ["Ypar"], "multi": ["Star", "Fxs", "Fxb", "Ypar"]}


def config_for(run: str, epochs: int):
    from cmcnn.train.recipe import TrainConfig

    channel, _, variant = run.partition("-")
    if channel not in CHANNELS or variant not in VARIANTS:
        raise SystemExit(f"unknown run {run!r}: CHANNEL-VARIANT with CHANNEL in {', '.join(CHANNELS)} "
                         f"and VARIANT in {', '.join(VARIANTS)}")
    if VARIANTS[variant] is None:
        return TrainConfig(channels=CHANNELS[channel], epochs=epochs, lr=1e-3)
    return TrainConfig.survey(CHANNELS[channel], epochs=epochs, **VARIANTS[variant])


def _score(cols: dict) -> dict:
    from cmcnn.evaluate.metrics import coverage, in_range, table2

    out = {"table2": table2(cols["m200_true"], cols["m200_pred"], halo_id=cols["halo_id"]).to_dict()}
    if "log10_m200_err" in cols:
        sel = in_range(cols["m200_true"])
        out["coverage"] = coverage(cols["log10_m200_true"][sel], cols["log10_m200_pred"][sel],
                                   cols["log10_m200_err"][sel], cols["halo_id"][sel])
    return out


def baselines(data: Path, channels: list[str]) -> dict:
    from cmcnn.evaluate.baseline import fit_baseline
    from cmcnn.evaluate.predictions_csv import select_split

    out = {}
    for redshift in (True, False):
        res = fit_baseline(data, channels, redshift=redshift)
        for c, fit in res.fits.items():
            cols = select_split(res.predictions[c], "test", str(data))
            out[f"{c} ({fit.given})"] = {"aperture": fit.aperture.label, "given": fit.given, **_score(cols)}
    return out


def table(record: dict) -> str:
    lines = [f"{'estimator':34s} {'given':10s} {'n':>4s} {'σ (dex)':>16s} {'bias (dex)':>17s} "
             f"{'68 %':>6s} {'95 %':>6s} {'best/ep':>8s} {'min':>6s}"]

    def row(name, given, m, extra=""):
        t = m["table2"]
        cov = m.get("coverage")
        c68 = f"{100 * cov['68']['observed']:5.1f}" if cov else "    –"
        c95 = f"{100 * cov['95']['observed']:5.1f}" if cov else "    –"
        lines.append(f"{name:34s} {given:10s} {t['n']:4d} {t['scatter_dex']:.4f} ± {t['scatter_dex_se']:.4f} "
                     f"{t['log_bias']:+.4f} ± {t['log_bias_se']:.4f} {c68:>6s} {c95:>6s}{extra}")

    for name, r in record["runs"].items():
        given = "image + z" if r["config"]["redshift"] else "image only"
        row(name, given, r, f" {r['best_epoch']:3d}/{r['epochs_done']:<4d} {r['train_seconds'] / 60:6.1f}")
    for name, b in record["baselines"].items():
        row(f"baseline {name.split(' (')[0]} ({b['aperture']})", b["given"], b)
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/recipe.py", description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="dataset (cmc dataset) to train and score on")
    ap.add_argument("--work", help="folder of the training runs (resumable)")
    ap.add_argument("--runs", default="", help="comma list of CHANNEL-VARIANT")
    ap.add_argument("--figure", default=None, help="also draw the recorded runs' learning curves into this PNG")
    ap.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30)")
    ap.add_argument("--name", default="recipe", help="record name (default recipe)")
    ap.add_argument("--out", default="bench/results", help="record folder")
    args = ap.parse_args(argv)

    from cmcnn.train.history import read_history
    from cmcnn.train.training import predict_run, train

    path = Path(args.out) / f"{args.name}.json"
    record = json.loads(path.read_text()) if path.is_file() else {"runs": {}, "baselines": {}}
    if not args.runs:
        if args.figure is None:
            ap.error("give --runs to train, or --figure to draw the recorded learning curves")
        _figure(record, args.figure)
        return 0
    if args.data is None or args.work is None:
        ap.error("--runs needs --data and --work")
    data, work = Path(args.data), Path(args.work)
    record.update(data=str(data), machine=machine_info())
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    for run in runs:
        channels = CHANNELS[run.partition("-")[0]]
        missing = [c for c in channels if not any(k.startswith(f"{c} (") for k in record["baselines"])]
        if missing:
            record["baselines"].update(baselines(data, missing))
        cfg = config_for(run, args.epochs)
        t0 = time.perf_counter()
        summary = train(data, work / run, cfg, progress=True)
        h = read_history(work / run / "history.csv")
        cols = predict_run(work / run, data=data, split="test")
        cfg_json = json.loads((work / run / "config.json").read_text())
        record["runs"][run] = {
            "config": {k: cfg_json[k] for k in ("channels", "epochs", "lr", "optimizer", "schedule", "weight_decay",
                                                "augment", "redshift", "head", "uncertainty", "dropout",
                                                "batch_size", "seed", "decay")},
            "epochs_done": summary.epochs_done, "best_epoch": summary.best_epoch,
            "best_val_rms_dex": float(np.sqrt(summary.best_val_loss)),
            "train_seconds": float(np.nansum(h["seconds"])),
            "history": {k: v.tolist() for k, v in h.items()},
            "error_scale": cfg_json.get("error_scale"), **_score(cols)}
        print(f"{run}: {time.perf_counter() - t0:.0f} s", flush=True)
        write_result(args.out, args.name, record, table(record))
        print(table(record), flush=True)
    if args.figure:
        _figure(record, args.figure)
    return 0


def _figure(record: dict, out: str) -> None:
    """Validation (solid) and training (dotted) loss of every recorded run (Fig. 4 form)."""
    from cmcnn.train.history import learning_curves

    curves = [(name, {k: np.asarray(v) for k, v in run["history"].items()}) for name, run in record["runs"].items()]
    print(f"wrote {learning_curves(curves, out)}")


if __name__ == "__main__":
    sys.exit(main())
