"""How far the shipped models' float16 weights move their predictions: ONNX file vs the Keras run.

    python bench/half_weights.py --runs WORK/runs --data WORK/paper.h5 [--split test]

For each shipped model (models/<name>.onnx, exported with ``cmc export --half-weights``) the
training run's own Keras network (float32 weights, ``cmcnn.train.training.predict_run``) and the
ONNX file through onnxruntime (``cmcnn.evaluate.evaluation.predict_dataset``) predict every image of the
split; the largest and the rms |difference| [dex] are recorded in
bench/results/half_weights.{json,txt} with the machine and the command (atomically).  The export promised <= 1e-4 dex on
its 256 parity images; this checks the promise on images the export never saw.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="folder of the training runs, one per model name")
    ap.add_argument("--data", required=True, help="the models' dataset")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "half_weights"))
    args = ap.parse_args(argv)

    from cmcnn.evaluate.evaluation import predict_dataset
    from cmcnn.serve.shipped import NAMES, resolve_model
    from cmcnn.train.training import predict_run
    from cmcore.benchmarks import machine_info, write_result

    rows = {}
    for name in NAMES:
        keras = predict_run(Path(args.runs) / name, data=args.data, split=args.split)
        onnx = predict_dataset(resolve_model(name), args.data, args.split)
        assert np.array_equal(keras["index"], onnx["index"])
        d = np.abs(onnx["log10_m200_pred"] - keras["log10_m200_pred"])
        rows[name] = {"n": int(d.size), "max_abs_dex": float(d.max()), "rms_dex": float(np.sqrt(np.mean(d ** 2)))}
        print(f"{name:6s} n = {d.size}  max |ONNX(float16 weights) - Keras(float32)| = {d.max():.2e} dex  "
              f"rms {rows[name]['rms_dex']:.2e}", flush=True)
    record = {"machine": machine_info(), "split": args.split, "data": str(args.data), "models": rows}
    lines = [f"shipped models: float16-stored weights vs the float32 Keras network, {args.split} split of {args.data}",
             f"machine: {record['machine']}"]
    lines += [f"{n:6s} n={r['n']}  max {r['max_abs_dex']:.2e} dex  rms {r['rms_dex']:.2e} dex" for n, r in rows.items()]
    out = Path(args.out)
    write_result(out.parent, out.name, record, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
