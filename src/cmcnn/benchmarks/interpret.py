"""Benchmark of the Gaussian-mask scan: exact windowed reuse against brute force.

On one synthetic cluster image (npix × npix, a Gaussian blob plus noise) and the
paper's networks with random weights (single-channel ``Fxs`` and the four-channel
network, exported to ONNX in a child process so that the timed process never loads
TensorFlow), the full-resolution scan (σ = 5 px, stride 1 by default) is run three
ways in the same process, on the same :class:`~cmcnn.interpret.maskscan.ScanModel`
(so with the same onnxruntime threads):

- ``brute-split``: brute force, one forward pass per mask centre, through the very
  pieces the fast scan uses (NumPy asinh preprocessing, per-stage graphs, extracted
  tail): the equally built baseline of the **headline ratio**, which is therefore
  the gain of the windows alone;
- ``brute``: brute force through the exported model as a whole (onnxruntime's own,
  scalar ``Asinh``), the reference ΔM map; its ratio is reported beside;
- ``fast``: :func:`cmcnn.interpret.maskscan.fast_scan`.

Fairness: one untimed warm-up scan of every method (at a coarse stride, the same
code paths), then ``repeat`` timed rounds (default 3), every method once per round,
the order rotating by one from round to round so that each method goes first
equally often; median (headline) and minimum recorded for each, ratios from both.
Every timed scan must agree with the first ``brute`` map to ``TOLERANCE_DEX`` or the
benchmark fails; the largest |ΔM − ΔM_brute| [dex] is recorded with each row.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cmcore.benchmarks import write_result

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


#: Largest |ΔM - ΔM_brute| [dex] a timed scan may show (float32 networks: ~1e-6 seen).
TOLERANCE_DEX = 1e-4
#: Methods, in the order of the first round.
METHODS = ("brute-split", "brute", "fast")


def run(models: dict[str, Path], *, sigma: float = 5.0, stride: int = 1, repeat: int = 3,
        threads: int | None = None, warmup_stride: int | None = None, note: str | None = None,
        log=print) -> dict:
    """Time the three scans on each model in rotating rounds; return the record."""
    from cmcore.benchmarks.kernels import record_end, record_start
    from cmcnn.interpret.maskscan import (ScanModel, brute_force_scan, fast_scan, mask_radius, scan_arithmetic,
                                         split_brute_force_scan)

    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    record = {"benchmark": "interpret", **record_start()}
    scans = {"brute": brute_force_scan, "brute-split": split_brute_force_scan, "fast": fast_scan}
    warm = warmup_stride or max(stride, 6)
    rows = []
    for name, path in models.items():
        model = ScanModel(path, threads=threads)
        if model.redshift_input is not None:      # a redshift-aware network: the middle of its range
            model.redshift = float(np.mean(json.loads(model.metadata.get("redshift_range", "[0.05, 0.05]"))))
        image = test_image(model.npix, model.n_channels)
        for method in METHODS:                        # warm-up, untimed
            log(f"{name}: {method} warm-up scan (stride {warm})")
            scans[method](model, image, sigma, warm)
        times = {m: [] for m in METHODS}
        maps = {m: [] for m in METHODS}
        for r in range(repeat):
            for j in range(len(METHODS)):
                method = METHODS[(r + j) % len(METHODS)]
                log(f"{name}: {method} scan, round {r + 1} of {repeat}")
                t0 = time.perf_counter()
                res = scans[method](model, image, sigma, stride)
                times[method].append(time.perf_counter() - t0)
                maps[method].append(res.delta)
        reference = maps["brute"][0]
        centres = int(reference.size)
        diffs = {}
        for method in METHODS:      # every timed scan, not only one, against the first brute map
            diffs[method] = max(float(np.max(np.abs(d - reference))) for d in maps[method])
            if not diffs[method] <= TOLERANCE_DEX:
                raise AssertionError(f"{name}: a {method} scan differs from brute force by "
                                     f"{diffs[method]:.3g} dex (> {TOLERANCE_DEX})")
        arith = scan_arithmetic(model, sigma)
        med = {m: statistics.median(t) for m, t in times.items()}
        low = {m: min(t) for m, t in times.items()}
        for method in METHODS:
            rows.append({"network": name, "channels": model.n_channels, "npix": model.npix, "method": method,
                         "threads": threads, "centres": centres, "repeat": len(times[method]), "warmup": 1,
                         "seconds": med[method], "seconds_min": low[method], "seconds_all": times[method],
                         "centres_per_second": centres / med[method],
                         "speedup_vs_brute_split": med["brute-split"] / med[method],
                         "speedup_vs_brute_split_min": low["brute-split"] / low[method],
                         "speedup_vs_brute": med["brute"] / med[method],
                         "speedup_vs_brute_min": low["brute"] / low[method],
                         "max_abs_diff_vs_brute_dex": diffs[method], "redshift": model.redshift,
                         "delta_range_dex": float(np.ptp(reference)),
                         "conv_mflop_forward": arith["conv_flop_forward"] / 1e6,
                         "conv_mflop_per_centre_fast": arith["conv_flop_per_centre_fast"] / 1e6,
                         "arithmetic_ratio": arith["arithmetic_ratio"]})
    record.update({"sigma_px": sigma, "mask_radius_px": mask_radius(sigma), "stride": stride, "repeat": repeat,
                   "warmup_stride": warm, "threads": threads, "usable_cores": record["machine"]["usable_cores"],
                   "order": list(METHODS) + ["rotating by one per round"],
                   "headline": "fast vs brute-split (the same split graphs, one pass per centre)",
                   "tolerance_dex": TOLERANCE_DEX, "rows": rows, "note": note})
    return record_end(record)


def format_table(result: dict) -> str:
    from cmcore.benchmarks.kernels import context_lines

    thr = result["threads"] or f"onnxruntime default ({result['usable_cores']} usable cores)"
    lines = context_lines(result) + [
        f"Gaussian-mask scan, sigma {result['sigma_px']} px (changed square half-width "
        f"{result['mask_radius_px']} px), stride {result['stride']}; onnxruntime threads: {thr}, the same "
        f"for every method",
        f"timing: 1 untimed warm-up scan per method (stride {result['warmup_stride']}), then "
        f"{result['repeat']} rounds, every method once per round, order rotating; median and min",
        "headline: fast against brute-split (brute force through the same split graphs); against brute "
        "(the whole exported model) beside it; every scan agrees with brute to "
        f"{result['tolerance_dex']:g} dex",
    ]
    if result.get("note"):
        lines.append(f"note: {result['note']}")
    lines.append(f"{'network':<8} {'method':<12} {'centres':>7} {'median s':>9} {'min s':>8} {'centres/s':>9} "
                 f"{'vs brute-split':>14} {'(min)':>7} {'vs brute':>8} {'(min)':>7} {'max|diff| dex':>13}")
    for r in result["rows"]:
        lines.append(f"{r['network']:<8} {r['method']:<12} {r['centres']:>7} {r['seconds']:>9.2f} "
                     f"{r['seconds_min']:>8.2f} {r['centres_per_second']:>9.0f} "
                     f"{r['speedup_vs_brute_split']:>13.2f}x {r['speedup_vs_brute_split_min']:>6.2f}x "
                     f"{r['speedup_vs_brute']:>7.2f}x {r['speedup_vs_brute_min']:>6.2f}x "
                     f"{r['max_abs_diff_vs_brute_dex']:>13.2e}")
    lines.append("convolution arithmetic (dense head excluded): a forward pass, and the fast scan's mean per centre")
    for r in result["rows"]:
        if r["method"] == "fast":
            lines.append(f"{r['network']:<8} {r['conv_mflop_forward']:.1f} MFLOP per forward pass, "
                         f"{r['conv_mflop_per_centre_fast']:.1f} per centre in the fast scan "
                         f"({r['arithmetic_ratio']:.2f}x less)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the interpret benchmark (``cmc bench interpret`` and ``bench/interpret.py``)."""
    parser.add_argument("--npix", type=int, default=120, help="image side of the random networks (default 120)")
    parser.add_argument("--sigma", type=float, default=5.0, help="mask width [px] (default 5)")
    parser.add_argument("--stride", type=int, default=1, help="scan stride (default 1: full resolution)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed rounds after one warm-up, every method once per round (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument("--networks", default="single,multi", help="single, multi or both (default)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=MODEL.onnx",
                        help="time an exported model instead of a random network (repeatable)")
    parser.add_argument("--note", default=None, help="a remark stored with the record (e.g. what else ran)")
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
        result = run(models, sigma=args.sigma, stride=args.stride, repeat=args.repeat, threads=args.threads,
                     note=args.note, log=log)
        result["wall_seconds"] = time.perf_counter() - t0
    table = format_table(result)
    print(table)
    path = write_result(args.out, "interpret", result, table)
    print(f"\nwritten {path}")
    return 0


