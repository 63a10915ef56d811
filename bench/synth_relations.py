"""Recorded run of ``cmc synth-plots`` on an existing universe: time, peak memory, measured relations.

Usage::

    python bench/synth_relations.py UNIVERSE --figure rel.png --measured measured.npz \\
        [--name synth-relations-paper] [--out bench/results]

Runs ``cmc synth-plots UNIVERSE --out FIGURE --measured NPZ`` in a child process
(the command a user types; it writes ``literature_offsets`` into
``UNIVERSE/synth.json``) and records its wall time and peak resident memory
(``getrusage(RUSAGE_CHILDREN)``), the offsets from the literature, and, from the
measured values, what diagnoses them: power-law fits of each relation in the
cluster (1e14–1e15 M☉) and group (1e13–1e14 M☉) ranges, the measured M500 against
the M500 the generator drew, each relation's ratio to the literature at either mass, and
L_bol / L_soft.  With an existing ``NPZ`` the child only redraws (no snapshot read).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cmcore.benchmarks import machine_info, write_result
from cmcore.synth.literature import RELATIONS
from cmcore.synth.measure import fit_power_law

RANGES = {"clusters_1e14-1e15": (1e14, 1e15), "1e14-3e14": (1e14, 3e14), "groups_1e13-1e14": (1e13, 1e14)}
FITS = {"lx_soft500": 2e14, "lx_bol500": 2e14, "y500": 3e14, "t_sl_kev": 3e14, "f_gas500": 3e14}


def diagnostics(got: dict, targets: dict) -> dict:
    """Fits and mass/temperature checks of the measured values (halo-id order)."""
    by_id = {int(h): i for i, h in enumerate(targets["halo_id"])}
    rows = np.array([by_id[int(h)] for h in got["halo_id"]])
    drawn_m500 = np.asarray(targets["m500"], dtype=float)[rows]  # where the gas relations were drawn
    nfw_m500 = np.asarray(targets.get("m500_nfw", targets["m500"]), dtype=float)[rows]
    m500 = got["m500"]
    out: dict = {"fits": {}, "m500_measured_over_drawn": {}, "m500_measured_over_nfw": {},
                 "at_measured_and_drawn_m500": {}, "lx_bol_over_lx_soft": {}}
    for key, pivot in FITS.items():
        out["fits"][key] = {}
        for name, (lo, hi) in RANGES.items():
            sel = (m500 >= lo) & (m500 < hi) & (got[key] > 0)
            if sel.sum() < 3:
                continue
            a, b, rms = fit_power_law(m500[sel] / pivot, got[key][sel])
            out["fits"][key][name] = {"n": int(sel.sum()), "pivot_m500": pivot, "value_at_pivot": 10**a,
                                      "slope": b, "rms_dex": rms}
    for name, (lo, hi) in RANGES.items():
        sel = (m500 >= lo) & (m500 < hi)
        if not sel.any():
            continue
        out["m500_measured_over_drawn"][name] = float(np.median(m500[sel] / drawn_m500[sel]))
        out["m500_measured_over_nfw"][name] = float(np.median(m500[sel] / nfw_m500[sel]))
        for r in RELATIONS:
            if r.key not in got:
                continue
            entry = out["at_measured_and_drawn_m500"].setdefault(r.key, {"source": r.source})
            entry[name] = {"at_measured_m500": float(np.median(got[r.key][sel] / r.mean(m500[sel]))),
                           "at_drawn_m500": float(np.median(got[r.key][sel] / r.mean(drawn_m500[sel])))}
        out["lx_bol_over_lx_soft"][name] = float(np.median(got["lx_bol500"][sel] / got["lx_soft500"][sel]))
    return out


def format_table(r: dict) -> str:
    m = r["machine"]
    lines = [
        r["child_command"],
        f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {m['date_utc']}",
        f"wall time {r['wall_seconds']:.0f} s, peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB",
        f"haloes {r['n_halos']}",
    ]
    for key, entry in r["literature_offsets"].items():
        lines.append(f"{key} vs {entry['source']}: " + ", ".join(
            f"{name} x{v['ratio']:.2f} (n={v['n']}, rms {v['rms_dex']:.2f} dex)"
            for name, v in entry.items() if isinstance(v, dict) and v.get("n")))
    for key, fits in r["diagnostics"]["fits"].items():
        lines.append(f"fit {key}: " + ", ".join(
            f"{name} {f['value_at_pivot']:.3g} at {f['pivot_m500']:.0e} slope {f['slope']:.2f} "
            f"(n={f['n']}, rms {f['rms_dex']:.2f} dex)" for name, f in fits.items()))
    d = r["diagnostics"]
    lines.append("M500 measured / drawn (the gas relations' M500): " + ", ".join(
        f"{k} {v:.3f}" for k, v in d["m500_measured_over_drawn"].items()))
    lines.append("M500 measured / NFW M500: " + ", ".join(
        f"{k} {v:.3f}" for k, v in d["m500_measured_over_nfw"].items()))
    for s in r.get("literature_slopes", []):
        lo, hi = s["m_range"]
        if s["measured"] is not None:
            lines.append(f"slope {s['key']} {lo:.0e}-{hi:.0e}: {s['measured']:.2f} vs {s['observed']:.2f} "
                         f"+- {s['error']:.2f} {s['source']} ({s['sigmas']:+.1f} sigma, n={s['n']})")
    for key, entry in d["at_measured_and_drawn_m500"].items():
        lines.append(f"{key} / {entry['source']} at measured | drawn M500: " + ", ".join(
            f"{k} x{v['at_measured_m500']:.2f} | x{v['at_drawn_m500']:.2f}"
            for k, v in entry.items() if isinstance(v, dict)))
    lines.append("L_bol / L_soft: " + ", ".join(f"{k} {v:.2f}" for k, v in d["lx_bol_over_lx_soft"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("universe", type=Path, help="folder written by `cmc synth` (its synth.json is updated)")
    parser.add_argument("--figure", type=Path, required=True, help="relations figure to write")
    parser.add_argument("--measured", type=Path, required=True, help="measured values (.npz), kept")
    parser.add_argument("--name", default="synth-relations", help="record name (default synth-relations)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="record folder")
    args = parser.parse_args(argv)
    cmd = [sys.executable, "-m", "cmcnn.cli", "synth-plots", str(args.universe), "--out", str(args.figure),
           "--measured", str(args.measured)]
    print("running: " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    meta = json.loads((args.universe / "synth.json").read_text())
    with np.load(args.measured) as f:
        got = {k: f[k] for k in f.files}
    result = {
        "benchmark": "synth-relations",
        "machine": machine_info(),
        "child_command": "cmc " + " ".join(cmd[3:]),
        "preset": meta["config"]["name"],
        "seed": meta["seed"],
        "universe_code_version": meta["code_version"],
        "n_particles": meta["n_particles"],
        "n_halos": int(len(got["halo_id"])),
        "wall_seconds": seconds,
        "peak_rss_bytes": peak_kib * 1024,
        "peak_rss_note": None if before < peak_kib else "an earlier child was larger: upper bound",
        "literature_offsets": meta["literature_offsets"],
        "literature_slopes": meta.get("literature_slopes", []),
        "diagnostics": diagnostics(got, meta["targets"]),
    }
    table = format_table(result)
    print(table)
    print(f"\nwritten {write_result(args.out, args.name, result, table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
