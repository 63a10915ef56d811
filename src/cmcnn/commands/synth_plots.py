"""``cmc synth-plots``: the relations of a synthetic universe against the literature (PNG)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "synth-plots"
HELP = ("plot the relations measured from a synthetic universe's particles and rendered images "
        "against the literature, and record each relation's offset in synth.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="folder written by `cmc synth`")
    p.add_argument("--out", required=True, help="figure to write (PNG, PDF, SVG), atomically")
    p.add_argument("--no-images", action="store_true",
                   help="skip rendering the Fxs images (L_X from the particles only)")
    p.add_argument("--measured", metavar="NPZ",
                   help="file of the measured values: read from it when it exists (redraw without "
                        "reading the snapshot), else measured and written to it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from cmcore.synth.plots import plot_relations

    path, found = plot_relations(args.directory, args.out, images=not args.no_images,
                                 measured=args.measured, progress=not args.no_progress)
    for key, entry in found.items():
        parts = [f"{name} x{v['ratio']:.2f} (n={v['n']})" for name, v in entry.items()
                 if isinstance(v, dict) and v.get("n")]
        print(f"{key} vs {entry['source']}: " + ", ".join(parts))
    meta = json.loads((Path(args.directory) / "synth.json").read_text())
    for s in meta.get("literature_slopes", []):
        lo, hi = s["m_range"]
        got = "too few haloes" if s["measured"] is None else f"{s['measured']:.2f} ({s['sigmas']:+.1f} sigma)"
        print(f"slope {s['key']} {lo:.0e}-{hi:.0e}: {got} vs {s['observed']:.2f} +- {s['error']:.2f} "
              f"{s['source']} (n={s['n']})")
    print(f"{path}: relations figure written; offsets and slopes in {args.directory}/synth.json")
    return 0
