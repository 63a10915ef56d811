"""``cmc evaluate``: Table 2, per-bin bias and Figs 4-7 of runs, predictions files and baselines."""
from __future__ import annotations

import argparse

from .baseline import channel_list, resolve_channels

NAME = "evaluate"
HELP = ("evaluate training runs, predictions CSVs, ONNX models or shipped models (Table 2, per-bin bias, "
        "Figs 4-7, comparison table)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="training run directories, predictions CSV files, ONNX models (MODEL.onnx) "
                        "and/or shipped models (Star, Fxs, Fxb, Ypar, multi)")
    p.add_argument("--data", default=None, help="dataset to predict the runs (default: each run's own) and "
                   "the ONNX models on, and to fit the baseline on")
    p.add_argument("--split", default="test", choices=("train", "validation", "test"),
                   help="split to evaluate (default test)")
    p.add_argument("--baseline", type=channel_list, default=None, metavar="CHANNELS",
                   help="also fit and evaluate the classical baseline of these channels (comma list or all; needs --data)")
    p.add_argument("--batch-size", type=int, default=256, help="prediction batch size for runs (default 256)")
    p.add_argument("--calibrate", action="store_true",
                   help="also evaluate each estimator after a linear calibration of log M fitted on the "
                        "validation split (undoes regression to the mean; docs/evaluation.md)")
    p.add_argument("--out", required=True, help="report folder")


def run(args: argparse.Namespace) -> int:
    from cmcnn.evaluate.evaluation import evaluate
    from cmcore.errors import InputError

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be positive, got {args.batch_size}")
    baseline = None
    if args.baseline:
        if args.data is None:
            raise InputError("--baseline needs --data (the dataset to fit it on)")
        baseline = resolve_channels(args.baseline, args.data)
    report = evaluate(args.inputs, args.out, data=args.data, split=args.split,
                      baseline_channels=baseline, batch_size=args.batch_size,
                      calibrate=args.calibrate, progress=True)
    print(f"{len(report['estimators'])} estimator(s) evaluated on the {args.split} split -> {args.out}")
    return 0
