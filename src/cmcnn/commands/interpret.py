"""``cmc interpret``: which pixels drive a network's mass (Yan et al. 2020, §4).

    cmc interpret --method mask MODEL.onnx INPUT [--index K] [--sigma 5] [--stride 1] [--brute] --out DIR
    cmc interpret --method deepdream RUN INPUT [--index K] [--iterations 1] [--step ALPHA] --out DIR
    cmc interpret --method core-ring DATA [--channels ...] [--split test] --out DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "interpret"
HELP = "interpret a network: Gaussian-mask scans, Deep Dream gradients, core/ring correlations (paper §4)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, choices=("mask", "deepdream", "core-ring"),
                   help="mask: eq. 13 scan of an ONNX model; deepdream: eq. 12 on a training run; "
                        "core-ring: F_cent/F_ring vs true mass over a dataset")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="mask: MODEL INPUT (MODEL: an ONNX file or a shipped model, e.g. Ypar); "
                        "deepdream: RUN INPUT; core-ring: DATA (INPUT: a FITS cutout, or a dataset file with --index)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--index", type=int, default=None, help="image of a dataset INPUT")
    p.add_argument("--channels", default=None,
                   help="channels of a dataset INPUT in the network's order (default: the run's, or all)")
    p.add_argument("--sigma", type=float, default=5.0, help="mask: Gaussian width in pixels (default 5)")
    p.add_argument("--stride", type=int, default=1, help="mask: scan every N-th pixel (default 1)")
    p.add_argument("--brute", action="store_true", help="mask: one full forward pass per centre (the reference)")
    p.add_argument("--threads", type=int, default=None, help="mask: onnxruntime threads (default: all cores)")
    p.add_argument("--iterations", type=int, default=1, help="deepdream: iterations of eq. 12 (default 1)")
    p.add_argument("--step", type=float, default=None,
                   help="deepdream: alpha (default: largest first change = 1%% of max |I|)")
    p.add_argument("--split", default=None, choices=("train", "validation", "test"),
                   help="core-ring: only this split (default: all images)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")


def _expect(args, n: int, what: str) -> None:
    if len(args.paths) != n:
        raise ValueError(f"--method {args.method} takes {what}, got {len(args.paths)} path(s)")


def _progress(enabled: bool):
    if not enabled:
        return None

    def show(done: int, total: int) -> None:
        print(f"\r  {done}/{total} mask centres", end="" if done < total else "\n", file=sys.stderr, flush=True)
    return show


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.method == "mask":
        return _mask(args, out)
    if args.method == "deepdream":
        return _deepdream(args, out)
    return _core_ring(args, out)


def _channels(text):
    from cmcnn.data import parse_channels

    return None if text is None else parse_channels(text)


def _mask(args, out: Path) -> int:
    from cmcnn.interpret import map_header, plot_panels, read_input, write_map
    from cmcnn.maskscan import ScanModel, mask_radius, mask_scan

    _expect(args, 2, "MODEL.onnx INPUT")
    model = ScanModel(args.paths[0], threads=args.threads)
    inp = read_input(args.paths[1], args.index, _channels(args.channels))
    if inp.image.shape != (model.npix, model.npix, model.n_channels):
        raise ValueError(f"{args.paths[0]} takes ({model.npix}, {model.npix}, {model.n_channels}) images; "
                         f"the input is {inp.image.shape} (choose --channels)")
    res = mask_scan(model, inp.image, sigma=args.sigma, stride=args.stride,
                    method="brute" if args.brute else "fast", progress=_progress(not args.no_progress))
    name = f"{inp.label}_mask"
    header = map_header(inp.header, args.stride, "dex",
                        f"Delta log10 M200 when masked (eq. 13), sigma={args.sigma} px, stride={args.stride}")
    files = write_map(out, name, res.delta, header)
    import numpy as np

    full = np.kron(res.delta, np.ones((args.stride, args.stride)))[:model.npix, :model.npix]
    files.append(plot_panels(inp, [(f"mask ΔM (σ = {args.sigma:g} px)", full, r"$\Delta\log_{10}M$ [dex]")],
                             out / f"{name}.png", title=f"log10 M_pred = {res.log10_m:.4f}"))
    summary = {"method": res.method, "log10_m_pred": res.log10_m, "sigma_px": args.sigma, "stride": args.stride,
               "mask_radius_px": mask_radius(args.sigma), "seconds": res.seconds,
               "delta_min": float(res.delta.min()), "delta_max": float(res.delta.max()),
               "log10_m200_true": inp.log10_m200_true, "files": [str(f) for f in files]}
    (out / f"{name}.json").write_text(json.dumps(summary, indent=1))
    print(f"{name}: log10 M_pred = {res.log10_m:.4f}; ΔM from {res.delta.min():+.4f} to {res.delta.max():+.4f} dex "
          f"({res.delta.size} centres, {res.method}, {res.seconds:.1f} s) -> {out}")
    return 0


def _deepdream(args, out: Path) -> int:
    from cmcnn.deepdream import deep_dream
    from cmcnn.interpret import map_header, plot_panels, read_input, write_map
    from cmcnn.training import load_run

    _expect(args, 2, "RUN INPUT")
    model, config = load_run(args.paths[0])
    channels = _channels(args.channels) or config["channels"]
    inp = read_input(args.paths[1], args.index, channels)
    if inp.image.shape != (config["npix"], config["npix"], len(config["channels"])):
        raise ValueError(f"{args.paths[0]} takes ({config['npix']}, {config['npix']}, {len(config['channels'])}) "
                         f"images; the input is {inp.image.shape}")
    res = deep_dream(model, inp.image, iterations=args.iterations, step=args.step)
    name = f"{inp.label}_deepdream"
    files = []
    for c, ch in enumerate(inp.channels):
        header = map_header(inp.header, 1, "", f"Deep Dream change I_p - I_0 (eq. 12), {args.iterations} "
                                               f"iteration(s), alpha={res.step:.6g}, channel {ch}")
        files += write_map(out, f"{name}_{ch}", res.change[..., c], header)
    files.append(plot_panels(inp, [(f"Deep Dream, {args.iterations} it.", res.change, "change of I")],
                             out / f"{name}.png",
                             title=f"log10 M_pred {res.log10_m[0]:.4f} -> {res.log10_m[-1]:.4f}"))
    (out / f"{name}.json").write_text(json.dumps(
        {"iterations": args.iterations, "step": res.step, "log10_m_pred": res.log10_m,
         "log10_m200_true": inp.log10_m200_true, "files": [str(f) for f in files]}, indent=1))
    print(f"{name}: alpha = {res.step:.4g}, log10 M_pred {res.log10_m[0]:.4f} -> {res.log10_m[-1]:.4f} -> {out}")
    return 0


def _core_ring(args, out: Path) -> int:
    from cmcnn.coring import core_ring_analysis, format_table, plot_core_ring

    _expect(args, 1, "DATA")
    res = core_ring_analysis(args.paths[0], _channels(args.channels), args.split)
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(res)
    (out / "core_ring.txt").write_text(table + "\n")
    (out / "core_ring.json").write_text(json.dumps({"data": args.paths[0], "split": args.split,
                                                    "n_images": res["n_images"], "rows": res["rows"]}, indent=1))
    plot_core_ring(res, out / "core_ring.png")
    print(table)
    print(f"(Pearson r of log10 F vs log10 M200 over {res['n_images']} images; the paper: 0.58 core, "
          f"0.94 ring for Fxs and Fxb) -> {out}")
    return 0

