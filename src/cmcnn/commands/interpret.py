"""``cmc interpret``: which pixels drive a network's mass (Yan et al. 2020, §4).

    cmc interpret mask MODEL INPUT [--index K] [--sigma 5] [--stride 1] [--brute] --out DIR
    cmc interpret deepdream RUN INPUT [--index K] [--iterations 1] [--step ALPHA] --out DIR
    cmc interpret core-ring DATA [--channels ...] [--split test] --out DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cmcore.fileio import atomic_write

NAME = "interpret"
HELP = "interpret a network: Gaussian-mask scans, Deep Dream gradients, core/ring correlations (paper §4)"


def _common(p: argparse.ArgumentParser, dataset_input: bool = True) -> None:
    p.add_argument("--out", required=True, help="output folder")
    if dataset_input:
        p.add_argument("--index", type=int, default=None, help="image of a dataset INPUT")
    p.add_argument("--channels", default=None,
                   help="channels of a dataset in the network's order (default: the model's, or all)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    m = sub.add_parser("mask", help="Gaussian-mask scan (eq. 13) of an ONNX model",
                       description="Gaussian-mask scan (eq. 13) of an ONNX model on one image")
    m.add_argument("model", metavar="MODEL", help="an ONNX file or a shipped model (e.g. Ypar)")
    m.add_argument("input", metavar="INPUT", help="a FITS cutout, or a dataset file with --index")
    _common(m)
    m.add_argument("--sigma", type=float, default=5.0, help="Gaussian width in pixels (default 5)")
    m.add_argument("--stride", type=int, default=1, help="scan every N-th pixel (default 1)")
    m.add_argument("--brute", action="store_true", help="one full forward pass per centre (the reference)")
    m.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    m.add_argument("--redshift", type=float, default=None,
                   help="the image's redshift, for a redshift-aware model (default: the FITS REDSHIFT card "
                        "or the dataset's label)")
    d = sub.add_parser("deepdream", help="Deep Dream (eq. 12) on a training run",
                       description="Deep Dream (eq. 12): gradient ascent of a training run's mass on one image")
    d.add_argument("run", metavar="RUN", help="a training run directory (cmc train)")
    d.add_argument("input", metavar="INPUT", help="a FITS cutout, or a dataset file with --index")
    _common(d)
    d.add_argument("--iterations", type=int, default=1, help="iterations of eq. 12 (default 1)")
    d.add_argument("--step", type=float, default=None,
                   help="alpha (default: largest first change = 1%% of max |I|)")
    c = sub.add_parser("core-ring", help="F_cent/F_ring against true mass over a dataset (§4)",
                       description="Correlation of core and ring fluxes with the true M200 over a dataset (§4)")
    c.add_argument("data", metavar="DATA", help="a cmc dataset file")
    _common(c, dataset_input=False)
    c.add_argument("--split", default=None, choices=("train", "validation", "test"),
                   help="only this split (default: all images)")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(text)


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
    from cmcnn.train.data import parse_channels

    return None if text is None else parse_channels(text)


def _mask(args, out: Path) -> int:
    from cmcnn.interpret.maps import map_header, plot_panels, read_input, write_map
    from cmcnn.interpret.maskscan import ScanModel, mask_radius, mask_scan

    model = ScanModel(args.model, threads=args.threads)
    inp = read_input(args.input, args.index, _channels(args.channels))
    if inp.image.shape != (model.npix, model.npix, model.n_channels):
        raise ValueError(f"{args.model} takes ({model.npix}, {model.npix}, {model.n_channels}) images; "
                         f"the input is {inp.image.shape} (choose --channels)")
    z = args.redshift if args.redshift is not None else inp.redshift
    res = mask_scan(model, inp.image, sigma=args.sigma, stride=args.stride,
                    method="brute" if args.brute else "fast", progress=_progress(not args.no_progress),
                    redshift=z if model.redshift_input else None)
    name = f"{inp.label}_mask"
    header = map_header(inp.header, args.stride, "dex",
                        f"Delta log10 M200 when masked (eq. 13), sigma={args.sigma} px, stride={args.stride}")
    files = write_map(out, name, res.delta, header)
    import numpy as np

    full = np.kron(res.delta, np.ones((args.stride, args.stride)))[:model.npix, :model.npix]
    files.append(plot_panels(inp, [(f"mask ΔM (σ = {args.sigma:g} px)", full, r"$\Delta\log_{10}M$ [dex]")],
                             out / f"{name}.png", title=f"log10 M_pred = {res.log10_m:.4f}"))
    summary = {"method": res.method, "log10_m_pred": res.log10_m, "sigma_px": args.sigma, "stride": args.stride,
               "redshift": z if model.redshift_input else None,
               "mask_radius_px": mask_radius(args.sigma), "seconds": res.seconds,
               "delta_min": float(res.delta.min()), "delta_max": float(res.delta.max()),
               "log10_m200_true": inp.log10_m200_true, "files": [str(f) for f in files]}
    _write_text(out / f"{name}.json", json.dumps(summary, indent=1))
    print(f"{name}: log10 M_pred = {res.log10_m:.4f}; ΔM from {res.delta.min():+.4f} to {res.delta.max():+.4f} dex "
          f"({res.delta.size} centres, {res.method}, {res.seconds:.1f} s) -> {out}")
    return 0


def _deepdream(args, out: Path) -> int:
    from cmcnn.interpret.deepdream import deep_dream
    from cmcnn.interpret.maps import map_header, plot_panels, read_input, write_map
    from cmcnn.train.training import load_model

    model, config = load_model(args.run)
    channels = _channels(args.channels) or config["channels"]
    inp = read_input(args.input, args.index, channels)
    if inp.image.shape != (config["npix"], config["npix"], len(config["channels"])):
        raise ValueError(f"{args.run} takes ({config['npix']}, {config['npix']}, {len(config['channels'])}) "
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
    _write_text(out / f"{name}.json", json.dumps(
        {"iterations": args.iterations, "step": res.step, "log10_m_pred": res.log10_m,
         "log10_m200_true": inp.log10_m200_true, "files": [str(f) for f in files]}, indent=1))
    print(f"{name}: alpha = {res.step:.4g}, log10 M_pred {res.log10_m[0]:.4f} -> {res.log10_m[-1]:.4f} -> {out}")
    return 0


def _core_ring(args, out: Path) -> int:
    from cmcnn.interpret.core_ring import core_ring_analysis, format_table, plot_core_ring

    res = core_ring_analysis(args.data, _channels(args.channels), args.split)
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(res)
    _write_text(out / "core_ring.txt", table + "\n")
    _write_text(out / "core_ring.json", json.dumps({"data": args.data, "split": args.split,
                                                    "n_images": res["n_images"], "rows": res["rows"]}, indent=1))
    plot_core_ring(res, out / "core_ring.png")
    print(table)
    print(f"(Pearson r of log10 F vs log10 M200 over {res['n_images']} images; the paper: 0.58 core, "
          f"0.94 ring for Fxs and Fxb) -> {out}")
    return 0

