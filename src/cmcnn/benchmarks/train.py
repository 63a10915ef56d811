"""Training throughput of the paper's networks (``cmc bench train``).

For each network (single-channel, multi-channel) and CPU thread count, a fresh Python
process builds the 120 × 120 network with random weights, makes random images in
memory and times one epoch of

- **cmc**: the loop of :func:`cmcnn.train.training.train` — batches cut from the image
  stack, ``train_on_batch`` per batch (what ``cmc train`` runs, without disk I/O);
- **baseline**: Keras ``model.fit`` on the same arrays, batch size and optimizer,

after one untimed warm-up epoch of each (tracing).  The ratio baseline/cmc > 1 means
cmc's loop is faster.  Each configuration runs in its own process because
TensorFlow fixes its thread pools when it starts.  With ``KERAS_BACKEND=jax`` the same
code measures JAX (e.g. on a GPU, where TensorFlow is not installed).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

NETWORKS = {"single": ["Ypar"], "multi": ["Star", "Fxs", "Fxb", "Ypar"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=int, default=500, help="images per timed epoch (default 500)")
    p.add_argument("--batch-size", type=int, default=50, help="batch size (default 50, the paper's)")
    p.add_argument("--networks", default="single,multi", help="single, multi or both (default)")
    p.add_argument("--threads", default="1,2", help="CPU thread counts, comma-separated (default 1,2)")
    p.add_argument("--repeat", type=int, default=2, help="timed epochs per measurement, best kept (default 2)")
    p.add_argument("--out", default=None, help="folder for train.json and train.txt (default: print only)")


def _worker(network: str, threads: int, images: int, batch: int, repeat: int) -> dict:
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    else:
        import jax

        devices = [str(d) for d in jax.devices() if d.platform == "gpu"]
    from cmcnn.train.models import build_model
    from cmcnn.train.recipe import TrainConfig, make_optimizer

    channels = NETWORKS[network]
    rng = np.random.default_rng(0)
    x = rng.lognormal(0.0, 1.0, size=(images, 120, 120, len(channels))).astype(np.float32)
    y = rng.uniform(13.0, 15.0, images).astype(np.float32)

    def fresh():
        keras.utils.set_random_seed(0)
        m = build_model(channels)
        m.compile(optimizer=make_optimizer(TrainConfig(channels=channels)), loss="mean_squared_error")
        return m

    def cmc_epoch(m):
        for s in range(0, images, batch):
            m.train_on_batch(x[s:s + batch], y[s:s + batch])

    def keras_epoch(m):
        m.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    out = {}
    for name, epoch in (("cmc", cmc_epoch), ("baseline", keras_epoch)):
        m = fresh()
        epoch(m)  # warm-up: tracing and allocation
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            epoch(m)
            best = min(best, time.perf_counter() - t0)
        out[name] = images / best
    return {"network": network, "channels": channels, "threads": threads, "backend": keras.backend.backend(),
            "gpus": devices, "images": images, "batch_size": batch,
            "cmc_images_per_s": out["cmc"], "keras_fit_images_per_s": out["baseline"],
            "ratio_keras_over_cmc_time": out["cmc"] / out["baseline"]}


def run_from_args(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from cmcore.benchmarks import machine_info, write_result

    networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    bad = [n for n in networks if n not in NETWORKS]
    if bad:
        raise ValueError(f"unknown network(s) {bad}: choose single, multi")
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    rows = []
    for network in networks:
        for t in threads:
            cmd = [sys.executable, "-m", "cmcnn.benchmarks.train", "--worker", network, str(t),
                   str(args.images), str(args.batch_size), str(args.repeat)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if res.returncode != 0:
                raise RuntimeError(f"benchmark worker {network}/{t} failed:\n{res.stderr[-2000:]}")
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{network:6s} {t} thread(s) [{row['backend']}{', GPU' if row['gpus'] else ''}]: "
                  f"cmc loop {row['cmc_images_per_s']:7.0f} images/s, Keras fit {row['keras_fit_images_per_s']:7.0f} "
                  f"images/s (ratio {row['ratio_keras_over_cmc_time']:.2f})", flush=True)
    info = machine_info()
    try:
        import keras

        info["keras"] = keras.__version__
        import tensorflow as tf  # noqa: F401

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    record = {"benchmark": "train", "machine": info, "rows": rows}
    if args.out:
        out = Path(args.out)
        text = "\n".join(
            [f"# cmc bench train — {info['cpu_model']}, {info['usable_cores']} cores, {info['date_utc']}",
             "network  threads  backend     cmc images/s  Keras-fit images/s  ratio"]
            + [f"{r['network']:7s}  {r['threads']:7d}  {r['backend'] + ('+GPU' if r['gpus'] else ''):10s}  "
               f"{r['cmc_images_per_s']:12.0f}  {r['keras_fit_images_per_s']:18.0f}  {r['ratio_keras_over_cmc_time']:5.2f}"
               for r in rows]) + "\n"
        write_result(out, "train", record, text.rstrip("\n"))
        print(f"wrote {out / 'train.json'} and {out / 'train.txt'} (with the command, commit, machine and load)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--worker":
        net, thr, n, b, r = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        print(json.dumps(_worker(net, thr, n, b, r)))
    else:
        from cmcore.benchmarks import run_module

        sys.exit(run_module(sys.modules[__name__]))
