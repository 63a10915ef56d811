"""Benchmark of the Gaussian-mask scan: exact windowed reuse against brute force.

On one synthetic cluster image (npix × npix, a Gaussian blob plus noise) and the
paper's networks with random weights (single-channel ``Fxs`` and the four-channel
network, exported to ONNX in a child process so that the timed process never loads
TensorFlow), the full-resolution scan (σ = 5 px, stride 1 by default) is run three
ways in the same process, best of ``--repeat``:

- ``brute``: the exported model, one forward pass per mask centre (batches of 256);
  the reference and the baseline of every ratio;
- ``brute-split``: the same brute force through the pieces the fast scan uses
  (NumPy asinh preprocessing, per-stage graphs, extracted tail), which separates the
  gain of the windows from that of the faster preprocessing;
- ``fast``: :func:`cmcnn.interpret.maskscan.fast_scan`.

The largest |ΔM_fast − ΔM_brute| [dex] is reported with each row.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cmcore.benchmarks import machine_info, write_result

SETS = {"single": ["Fxs"], "multi": ["Star", "Fxs", "Fxb", "Ypar"]}


def export_random_network(channels: list[str], npix: int, path: str, seed: int = 0) -> None:
    """Export a paper network with random weights and non-trivial biases/scaling (imports TensorFlow)."""
    import keras

    from cmcnn.train.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(channels, npix=npix)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name == "scaling":
            c = len(channels)
            layer.set_constants(rng.uniform(0.5, 2.0, c), rng.normal(0.0, 0.3, c), rng.uniform(0.5, 2.0, c))
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.05, layer.bias.shape).astype("float32")
                              + (14.0 if layer.name == "log10_m200" else 0.0))
    model(np.zeros((1, npix, npix, len(channels)), np.float32))
    import onnx

    from cmcnn.serve.export import keras_to_onnx

    onnx.save(keras_to_onnx(model), str(path))


def _export_in_child(channels: list[str], npix: int, path: Path) -> None:
    code = ("import sys; from cmcnn.benchmarks.interpret import export_random_network as e; "
            f"e({channels!r}, {npix}, {str(path)!r})")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def test_image(npix: int, n_channels: int, seed: int = 0) -> np.ndarray:
    """A cluster-like image: an off-centre Gaussian blob plus unit-ish noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:npix, :npix]
    c = 0.45 * npix
    blob = 5.0 * np.exp(-((x - c) ** 2 + (y - 1.1 * c) ** 2) / (2 * (npix / 7) ** 2))
    return (blob[..., None] + rng.normal(0.0, 0.3, (npix, npix, n_channels))).astype(np.float32)


def run(models: dict[str, Path], *, sigma: float = 5.0, stride: int = 1, repeat: int = 1,
        threads: int | None = None, log=print) -> dict:
    """Time the three scans on each model; return the record."""
    from cmcnn.interpret.maskscan import ScanModel, brute_force_scan, fast_scan, mask_radius, split_brute_force_scan

    rows = []
    for name, path in models.items():
        model = ScanModel(path, threads=threads)
        image = test_image(model.npix, model.n_channels)
        results = {}
        for method, fn in (("brute", brute_force_scan), ("brute-split", split_brute_force_scan),
                           ("fast", fast_scan)):
            best = None
            for _ in range(max(1, repeat)):
                log(f"{name}: {method} scan")
                r = fn(model, image, sigma, stride)
                best = r if best is None or r.seconds < best.seconds else best
            results[method] = best
        base = results["brute"]
        for method, r in results.items():
            rows.append({"network": name, "channels": model.n_channels, "npix": model.npix, "method": method,
                         "centres": int(r.delta.size), "seconds": r.seconds,
                         "centres_per_second": r.delta.size / r.seconds,
                         "speedup_vs_brute": base.seconds / r.seconds,
                         "max_abs_diff_vs_brute_dex": float(np.max(np.abs(r.delta - base.delta))),
                         "delta_range_dex": float(np.ptp(base.delta))})
    return {"benchmark": "interpret", "machine": machine_info(), "load_average": os.getloadavg(),
            "sigma_px": sigma, "mask_radius_px": mask_radius(sigma), "stride": stride, "repeat": repeat,
            "threads": threads, "rows": rows,
            "note": "machine shared with other agents' jobs while this ran; ratios are same-run"}


def format_table(result: dict) -> str:
    m = result["machine"]
    la = ", ".join(f"{v:.1f}" for v in result["load_average"])
    lines = [f"Gaussian-mask scan, sigma {result['sigma_px']} px (changed square half-width "
             f"{result['mask_radius_px']} px), stride {result['stride']}, best of {result['repeat']}",
             f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores; load average at the end {la} "
             f"({result['note']})",
             f"{'network':<8} {'method':<12} {'centres':>7} {'seconds':>8} {'centres/s':>9} {'vs brute':>8} "
             f"{'max|diff| dex':>13}"]
    for r in result["rows"]:
        lines.append(f"{r['network']:<8} {r['method']:<12} {r['centres']:>7} {r['seconds']:>8.2f} "
                     f"{r['centres_per_second']:>9.0f} {r['speedup_vs_brute']:>7.2f}x "
                     f"{r['max_abs_diff_vs_brute_dex']:>13.2e}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the interpret benchmark (``cmc bench interpret`` and ``bench/interpret.py``)."""
    parser.add_argument("--npix", type=int, default=120, help="image side of the random networks (default 120)")
    parser.add_argument("--sigma", type=float, default=5.0, help="mask width [px] (default 5)")
    parser.add_argument("--stride", type=int, default=1, help="scan stride (default 1: full resolution)")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each scan (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument("--networks", default="single,multi", help="single, multi or both (default)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=MODEL.onnx",
                        help="time an exported model instead of a random network (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for interpret.json and interpret.txt (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON and text in ``args.out``."""
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for spec in args.model:
            name, _, path = spec.partition("=")
            if not path:
                raise ValueError(f"--model wants NAME=MODEL.onnx, got {spec!r}")
            models[name] = Path(path)
        if not models:
            for name in [n.strip() for n in args.networks.split(",") if n.strip()]:
                if name not in SETS:
                    raise ValueError(f"--networks: unknown {name!r} (single, multi)")
                models[name] = Path(tmp) / f"{name}.onnx"
                log(f"exporting a random {name}-channel network ({args.npix} px)")
                _export_in_child(SETS[name], args.npix, models[name])
        t0 = time.perf_counter()
        result = run(models, sigma=args.sigma, stride=args.stride, repeat=args.repeat, threads=args.threads, log=log)
        result["wall_seconds"] = time.perf_counter() - t0
    table = format_table(result)
    print(table)
    path = write_result(args.out, "interpret", result, table)
    print(f"\nwritten {path}")
    return 0


