"""``cmc export``: a trained run as an ONNX model (preprocessing inside, metadata, parity-checked)."""
from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a trained network to ONNX (input in physical units; checked against TensorFlow)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory of `cmc train`")
    p.add_argument("--out", required=True, help="ONNX file to write (MODEL.onnx)")
    p.add_argument("--weights", default="best", choices=("best", "last"),
                   help="lowest-validation-loss weights (default) or the last epoch's")
    p.add_argument("--metrics", default=None, metavar="METRICS_JSON",
                   help="`cmc evaluate` metrics.json to record as the test metrics (default: none measured)")
    p.add_argument("--data", default=None,
                   help="dataset for the parity images (default: the run's training dataset)")
    p.add_argument("--opset", type=int, default=17, choices=(17, 18), help="ONNX opset (default 17)")
    p.add_argument("--check-images", type=int, default=64,
                   help="validation images predicted by both TensorFlow and onnxruntime (default 64)")
    p.add_argument("--tolerance", type=float, default=1e-5,
                   help="largest |onnxruntime - TensorFlow| allowed, in dex (default 1e-5)")
    p.add_argument("--half-weights", action="store_true",
                   help="store the large weight matrices as float16 (half the file) if the validation "
                        "images' predictions change by at most --half-tolerance")
    p.add_argument("--half-tolerance", type=float, default=1e-4,
                   help="largest prediction change accepted from float16 weights, in dex (default 1e-4)")
    p.add_argument("--calibrate", action="store_true",
                   help="undo regression to the mean inside the model: the linear calibration of log M fitted "
                        "on the run's validation split (docs/evaluation.md), errors rescaled to match")


def run(args: argparse.Namespace) -> int:
    import json

    from cmcnn.serve.export import export_run

    s = export_run(args.run, args.out, weights=args.weights, data=args.data, metrics=args.metrics,
                   opset=args.opset, n_check=args.check_images, tolerance=args.tolerance,
                   half=args.half_weights, half_tolerance=args.half_tolerance, calibrate=args.calibrate)
    print(f"wrote {s.path} (opset {s.opset}; channels {', '.join(json.loads(s.metadata['channels']))}; "
          f"onnxruntime vs TensorFlow on {s.n_parity_images} validation images: max |diff| {s.max_abs_diff:.2g} dex; weights: {s.metadata['weights_storage']})")
    return 0
