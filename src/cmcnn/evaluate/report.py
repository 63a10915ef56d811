"""The reproduction report: every table recomputed from prediction files, beside the paper's numbers.

:func:`write_report` reads the predictions CSVs (:mod:`cmcnn.evaluate.predictions_csv`) that the
experiments of :mod:`cmcnn.workflows.reproduce` wrote, recomputes Table 2 and the per-bin bias with
:mod:`cmcnn.evaluate.metrics` on their test rows, and writes ``report.md`` (tables, the figures
as PNG links) and ``report.json`` (the same numbers, for machines).  Nothing in the
tables is copied from an earlier summary: delete ``report.md`` and rerun, and it is
rebuilt from the CSVs alone.

The paper's numbers are quoted from Yan et al. (2020), MNRAS 499, 3445 ("Galaxy cluster
mass estimation with deep learning and hydrodynamical simulations"): Table 2 and §3.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmcore.fileio import atomic_write

from cmcnn.evaluate.metrics import CENTRAL_RANGE, per_bin, table2
from cmcnn.evaluate.predictions_csv import read_predictions, select_split

#: Yan et al. (2020), Table 2: test set, 13.25 < log10(M200,true/M☉) < 14.5.
PAPER_TABLE2 = {
    "Star": {"log_bias": -0.010, "log_bias_se": 0.003, "frac_bias_pct": -0.516, "frac_bias_pct_se": 0.621, "rms_pct": 19.028},
    "Fxs": {"log_bias": -0.007, "log_bias_se": 0.002, "frac_bias_pct": -0.349, "frac_bias_pct_se": 0.517, "rms_pct": 16.49},
    "Fxb": {"log_bias": -0.004, "log_bias_se": 0.002, "frac_bias_pct": 0.094, "frac_bias_pct_se": 0.524, "rms_pct": 16.036},
    "Ypar": {"log_bias": 0.002, "log_bias_se": 0.002, "frac_bias_pct": 1.814, "frac_bias_pct_se": 0.559, "rms_pct": 17.662},
    "multi": {"log_bias": -0.001, "log_bias_se": 0.002, "frac_bias_pct": 1.075, "frac_bias_pct_se": 0.575, "rms_pct": 17.693},
}
#: Yan et al. (2020), §3: mean ΔM/M_true in the lowest and highest mass bins (Fig. 6) [%].
PAPER_EXTREME_BINS_PCT = {"lowest": 20.0, "highest": -10.0}
#: Yan et al. (2020), §3: scatter without fore/background "lower than our fiducial results by ∼2%".
PAPER_NO_INTERLOPER_DELTA_PCT = -2.0
PAPER = "Yan et al. 2020, MNRAS 499, 3445"


@dataclass
class Estimator:
    """One row of a report table: a label and the predictions file it is recomputed from."""

    label: str
    path: Path
    paper: str | None = None  # key of PAPER_TABLE2, when the paper has this row


@dataclass
class Comparison:
    """One section of the report: estimators side by side (with the paper's words where it has some)."""

    key: str
    title: str
    text: str
    rows: list[Estimator]
    figures: list[Path] = field(default_factory=list)
    #: (name, label of the first row, label of the second row): differences of the two, one line each
    pairs: list[tuple[str, str, str]] = field(default_factory=list)
    #: what the first and the second of each pair are (column headings)
    pair_names: tuple[str, str] = ("first", "second")


def numbers(path: str | os.PathLike, split: str = "test") -> dict:
    """Table 2 and per-bin bias of one predictions file's ``split`` rows (with the lowest and highest
    populated bins)."""
    cols = select_split(read_predictions(path), split, str(path))
    t, p, h = cols["m200_true"], cols["m200_pred"], cols["halo_id"]
    bins = [b for b in per_bin(t, p, halo_id=h) if b["n"] > 0]
    return {"file": str(path), "table2": table2(t, p, halo_id=h).to_dict(), "n_all": int(t.size),
            "lowest_bin": bins[0], "highest_bin": bins[-1]}


def _f(v, fmt: str) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _pm(v, se, fmt: str) -> str:
    return f"{_f(v, fmt)} ± {_f(se, fmt.lstrip('+'))}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (first column left-aligned, the others right-aligned)."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def table2_rows(rows: Sequence[Estimator], results: dict[str, dict], paper: bool = True) -> list[list[str]]:
    """Rows of Table 2 recomputed, after the paper's numbers (where it has the row) when ``paper``."""
    out = []
    for e in rows:
        t = results[e.label]["table2"]
        p = PAPER_TABLE2.get(e.paper or "")
        quoted = ([_pm(p["log_bias"], p["log_bias_se"], "+.3f"), _pm(p["frac_bias_pct"], p["frac_bias_pct_se"], "+.2f"),
                   _f(p["rms_pct"], ".1f")] if p else ["–", "–", "–"])
        out.append([e.label, *(quoted if paper else []), str(t["n"]), _pm(t["log_bias"], t["log_bias_se"], "+.4f"),
                    _pm(t["frac_bias_pct"], t["frac_bias_pct_se"], "+.2f"), _f(t["rms_pct"], ".2f"),
                    _f(t["scatter_dex"], ".4f")])
    return out


TABLE2_HEADER = ("estimator", "paper ⟨log(M_pred/M_true)⟩", "paper ⟨M_pred/M_true⟩ − 1 (%)", "paper RMS (%)",
                 "n", "⟨log(M_pred/M_true)⟩", "⟨M_pred/M_true⟩ − 1 (%)", "RMS (%)", "σ (dex)")
EXTREMES_HEADER = ("estimator", "lowest bin", "n", "⟨ΔM/M⟩ (%)", "highest bin", "n", "⟨ΔM/M⟩ (%)")


def extremes_rows(rows: Sequence[Estimator], results: dict[str, dict]) -> list[list[str]]:
    """Mean fractional bias in the lowest and highest populated 0.25 dex bins of M_true."""
    out = []
    for e in rows:
        lo, hi = results[e.label]["lowest_bin"], results[e.label]["highest_bin"]
        out.append([e.label, f"{lo['lo']:.2f}–{lo['hi']:.2f}", str(lo["n"]), _f(lo["frac_bias_pct"], "+.1f"),
                    f"{hi['lo']:.2f}–{hi['hi']:.2f}", str(hi["n"]), _f(hi["frac_bias_pct"], "+.1f")])
    return out


def pair_rows(pairs: Sequence[tuple[str, str, str]], results: dict[str, dict]) -> list[list[str]]:
    """RMS and σ of two estimators and their difference (second − first)."""
    out = []
    for name, a, b in pairs:
        ta, tb = results[a]["table2"], results[b]["table2"]
        d_rms = None if ta["rms_pct"] is None or tb["rms_pct"] is None else tb["rms_pct"] - ta["rms_pct"]
        d_sig = None if ta["scatter_dex"] is None or tb["scatter_dex"] is None else tb["scatter_dex"] - ta["scatter_dex"]
        out.append([name, _f(ta["rms_pct"], ".2f"), _f(tb["rms_pct"], ".2f"), _f(d_rms, "+.2f"),
                    _f(ta["scatter_dex"], ".4f"), _f(tb["scatter_dex"], ".4f"), _f(d_sig, "+.4f")])
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def write_report(out: str | os.PathLike, sections: Sequence[Comparison], *, preamble: str,
                 appendix: Sequence[str] = (), notes: Sequence[str] = (), extra: dict | None = None,
                 title: str = "Yan et al. (2020) reproduced with cmc") -> dict:
    """Recompute every section's numbers from its predictions files and write ``report.md`` and ``report.json``.

    Parameters
    ----------
    out
        Folder of the report (file paths in it are written relative to it).
    sections
        The comparisons; the section with key ``table2`` is set beside the paper's Table 2 and its
        extreme-bin biases, every other one is a plain Table 2 of its rows (and its pairs' differences).
    preamble
        Markdown put under the title (scale, source, machine).
    appendix
        Markdown sections put after the comparisons (the interpretation).
    notes
        Lines listed at the end (what was left out, and why).
    extra
        Added to ``report.json``.
    title
        The report's heading.

    Returns
    -------
    dict
        The content of ``report.json``.
    """
    out = Path(out)
    md = [f"# {title}\n", preamble.strip(), ""]
    data: dict = {"central_range": list(CENTRAL_RANGE), "paper": PAPER, "sections": {}, **(extra or {})}
    for sec in sections:
        results = {e.label: numbers(e.path) for e in sec.rows}
        data["sections"][sec.key] = {"title": sec.title, "rows": {e.label: {**results[e.label], "file": _rel(e.path, out),
                                                                            "paper": e.paper} for e in sec.rows}}
        md += [f"## {sec.title}", "", sec.text.strip(), ""]
        with_paper = sec.key == "table2"
        header = TABLE2_HEADER if with_paper else (TABLE2_HEADER[0], *TABLE2_HEADER[4:])
        md += [table(header, table2_rows(sec.rows, results, with_paper)), ""]
        if sec.pairs:
            a, b = sec.pair_names
            md += [table(("", f"RMS {a} (%)", f"RMS {b} (%)", "Δ RMS (points)", f"σ {a} (dex)", f"σ {b} (dex)", "Δσ (dex)"),
                         pair_rows(sec.pairs, results)), ""]
            data["sections"][sec.key]["pairs"] = [
                {"name": n, "first": x, "second": y,
                 "delta_rms_pct": _delta(results[x]["table2"]["rms_pct"], results[y]["table2"]["rms_pct"]),
                 "delta_scatter_dex": _delta(results[x]["table2"]["scatter_dex"], results[y]["table2"]["scatter_dex"])}
                for n, x, y in sec.pairs]
        if sec.key == "table2":
            md += ["Mean bias in the lowest and highest populated bins of M_true (the paper, §3: "
                   f"about {PAPER_EXTREME_BINS_PCT['lowest']:+.0f} % in the lowest bin and "
                   f"{PAPER_EXTREME_BINS_PCT['highest']:+.0f} % in the highest, the pull towards the "
                   "sample's mean mass):", "",
                   table(EXTREMES_HEADER, extremes_rows(sec.rows, results)), ""]
        md += ["Recomputed from: " + ", ".join(f"`{_rel(e.path, out)}`" for e in sec.rows) + ".", ""]
        for fig in sec.figures:
            if Path(fig).is_file():
                md.append(f"![{Path(fig).stem}]({_rel(fig, out)})")
        if sec.figures:
            md.append("")
    md += [f"Columns: the test images with {CENTRAL_RANGE[0]} < log10 M200,true < {CENTRAL_RANGE[1]} "
           "(`cmcnn.evaluate.metrics.table2`); RMS is the root mean square of M_pred/M_true − 1, σ the standard "
           f"deviation of log10(M_pred/M_true); ± one standard error. Paper columns: {PAPER}, Table 2.", ""]
    md += [a.strip() + "\n" for a in appendix]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    with atomic_write(out / "report.md") as tmp:
        tmp.write_text("\n".join(md))
    with atomic_write(out / "report.json") as tmp:
        tmp.write_text(json.dumps(_finite(data), indent=1) + "\n")
    return data


def _delta(a, b):
    return None if a is None or b is None else b - a


def _finite(obj):
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
