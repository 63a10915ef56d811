"""GPU check of ``cmc train``: determinism, resumption and throughput on an accelerator.

Usage::

    KERAS_BACKEND=jax python bench/gpu_train_check.py --out DIR      # JAX GPU install
    python bench/gpu_train_check.py --out DIR                        # TensorFlow GPU install

On a planted 120 × 120 dataset (``tests/conftest.py:write_planted_dataset``) it trains
the single-channel network twice with the same seed and compares the weights, trains
once with an interruption in the middle of an epoch and resumes, compares with the
uninterrupted run, and times the training loop (images/s) of both networks.  Writes
``gpu_train_check.json`` in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--halos", type=int, default=200, help="planted haloes (2 projections each)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--bench-images", type=int, default=2000, help="images per timed epoch")
    args = p.parse_args()
    if os.environ.get("KERAS_BACKEND") == "jax":
        # deterministic XLA reductions on GPU
        os.environ.setdefault("XLA_FLAGS", "--xla_gpu_deterministic_ops=true")
    import keras
    import numpy as np
    from conftest import write_planted_dataset

    from cmcnn.benchmarks.train import _worker
    from cmcnn.train.history import read_history
    from cmcnn.train.training import train
    from cmcnn.train.recipe import TrainConfig

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    data = write_planted_dataset(tmp / "planted.h5", n_halos=args.halos, projections=2, npix=120)
    cfg = TrainConfig(channels=["Fxb"], epochs=args.epochs, batch_size=50, lr=1e-3, seed=1, augment=True)

    def weights(run):
        with np.load(run / "checkpoint.npz") as z:
            return [z[k] for k in sorted(z.files) if k.startswith("w")]

    t0 = time.perf_counter()
    s_a = train(data, tmp / "a", cfg, progress=True)
    t_train = time.perf_counter() - t0
    train(data, tmp / "b", cfg, progress=True)
    same_seed_equal = all(np.array_equal(x, y) for x, y in zip(weights(tmp / "a"), weights(tmp / "b")))
    try:
        train(data, tmp / "c", cfg, progress=False, stop_after_batches=(args.halos * 2 * 6 // 10) // 50 + 2)
    except KeyboardInterrupt:
        pass
    train(data, tmp / "c", cfg, progress=False)
    wa, wc = weights(tmp / "a"), weights(tmp / "c")
    resumed_equal = all(np.array_equal(x, y) for x, y in zip(wa, wc))
    resumed_maxdiff = max(float(np.max(np.abs(x - y))) for x, y in zip(wa, wc))
    throughput = [_worker(net, 0, args.bench_images, 50, 2) for net in ("single", "multi")]
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        gpu = None
    record = {
        "backend": keras.backend.backend(), "keras": keras.__version__, "python": platform.python_version(),
        "gpu": gpu, "xla_flags": os.environ.get("XLA_FLAGS"),
        "planted_images": int(args.halos * 2), "epochs": args.epochs,
        "history": {k: v.tolist() for k, v in read_history(tmp / "a" / "history.csv").items()}, "best_val_loss": s_a.best_val_loss,
        "train_seconds_first_run": t_train,
        "same_seed_bit_identical": same_seed_equal,
        "resumed_bit_identical": resumed_equal, "resumed_max_abs_weight_difference": resumed_maxdiff,
        "throughput": throughput,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "gpu_train_check.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
