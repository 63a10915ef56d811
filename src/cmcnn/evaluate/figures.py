"""The paper's evaluation figures (Yan et al. 2020, Figs 4–7) as PNG files.

Each function takes a list of :class:`Curve` (one per network or baseline), draws with
matplotlib's Agg backend (no display) and writes the PNG atomically
(:func:`cmcore.figures.save_png`).  Baselines are drawn dashed, networks solid.  Fig. 4,
the learning curves, is :func:`cmcnn.train.history.learning_curves`.

- :func:`predicted_vs_true` — log M_pred against log M_true, one panel per estimator,
  with the 1:1 line (Fig. 5);
- :func:`bias_vs_mass` — mean ΔM/M_true per 0.25 dex bin of M_true, error bars the
  standard deviation in the bin, 13.25–14.5 shaded (Fig. 6);
- :func:`bias_histograms` — the distribution of ΔM/M_true over 13.25 < log M_true < 14.5
  (Fig. 7).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmcore.figures import pyplot, save_png

from cmcnn.evaluate.metrics import CENTRAL_RANGE, in_range, per_bin


@dataclass
class Curve:
    """One estimator as the figures see it.

    Attributes
    ----------
    name
        Legend label.
    m200_true, m200_pred
        Masses of the evaluated images [M☉].
    baseline
        Drawn dashed when true.
    history
        Columns of ``history.csv`` (``epoch``, ``loss``, ``val_loss``, …) or None.
    log10_err
        Predicted 1σ errors of log10 M200 [dex], or None.
    """

    name: str
    m200_true: np.ndarray
    m200_pred: np.ndarray
    baseline: bool = False
    history: Mapping[str, np.ndarray] | None = None
    log10_err: np.ndarray | None = None


def _style(k: int, curve: Curve) -> dict:
    return {"color": f"C{k % 10}", "ls": "--" if curve.baseline else "-"}


def predicted_vs_true(curves: Sequence[Curve], out: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Fig. 5: log10 M_pred against log10 M_true, one panel per estimator."""
    plt = pyplot()
    n = len(curves)
    ncol = min(n, 3)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.5 * nrow), squeeze=False)
    both = np.concatenate([np.log10(np.concatenate([c.m200_true, c.m200_pred])) for c in curves])
    lo, hi = np.quantile(both, 0.002) - 0.15, np.quantile(both, 0.998) + 0.15  # a stray estimate does not squash the rest
    for k, c in enumerate(curves):
        ax = axes.flat[k]
        ax.axvspan(*CENTRAL_RANGE, color="0.92", zorder=0)
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        ax.scatter(np.log10(c.m200_true), np.log10(c.m200_pred), s=5, alpha=0.6, color=f"C{k % 10}", lw=0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(c.name, fontsize=9)
        ax.set_xlabel("log10 M200,true [M☉]")
        ax.set_ylabel("log10 M200,pred [M☉]")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_png(fig, out, dpi)


def bias_vs_mass(curves: Sequence[Curve], out: str | os.PathLike, *, edges: np.ndarray | None = None,
                 dpi: int = 110) -> Path:
    """Fig. 6: mean ΔM/M_true [%] per bin of log M_true, ± the bin's standard deviation."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.axvspan(*CENTRAL_RANGE, color="0.9", zorder=0, label=f"{CENTRAL_RANGE[0]} < log M < {CENTRAL_RANGE[1]}")
    ax.axhline(0.0, color="k", lw=0.8)
    n = len(curves)
    for k, c in enumerate(curves):
        rows = [r for r in per_bin(c.m200_true, c.m200_pred, edges) if r["n"]]
        x = np.array([r["centre"] for r in rows])
        width = rows[0]["hi"] - rows[0]["lo"] if rows else 0.25
        x = x + (k - (n - 1) / 2) * 0.5 * width / max(n, 1)  # side by side, inside the bin
        y = np.array([r["frac_bias_pct"] for r in rows])
        err = np.array([r["frac_std_pct"] if r["frac_std_pct"] is not None else 0.0 for r in rows])
        style = _style(k, c)
        ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=2, lw=1.2, label=c.name, **style)
    ax.set_xlabel("log10 M200,true [M☉]")
    ax.set_ylabel("⟨M_pred / M_true⟩ − 1 [%]")
    ax.set_title("Mass bias per 0.25 dex bin (error bars: standard deviation in the bin)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, out, dpi)


def bias_histograms(curves: Sequence[Curve], out: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Fig. 7: distribution of ΔM/M_true over the central range, one step histogram per estimator."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    fracs = []
    for c in curves:
        sel = in_range(c.m200_true)
        fracs.append(c.m200_pred[sel] / c.m200_true[sel] - 1.0)
    pooled = np.concatenate(fracs) if fracs else np.zeros(0)
    top = float(np.quantile(pooled, 0.99)) if pooled.size else 1.0
    bins = np.linspace(-1.0, max(1.0, top), 41)
    for k, (c, f) in enumerate(zip(curves, fracs)):
        if f.size:
            ax.hist(np.clip(f, bins[0], bins[-1]), bins=bins, density=True, histtype="step", lw=1.4,
                    label=f"{c.name} (n = {f.size})", **_style(k, c))
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel("ΔM / M_true  (last bin holds everything above it)")
    ax.set_ylabel("probability density")
    ax.set_title(f"Mass bias, {CENTRAL_RANGE[0]} < log10 M200,true < {CENTRAL_RANGE[1]}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, out, dpi)


def reliability(curves: Sequence[Curve], out: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Reliability of the predicted errors: observed against nominal coverage of the central
    Gaussian intervals, over the central mass range (estimators with errors only)."""
    from cmcnn.evaluate.metrics import coverage

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, label="calibrated")
    for k, c in enumerate(curves):
        if c.log10_err is None:
            continue
        sel = in_range(c.m200_true)
        cov = coverage(np.log10(c.m200_true[sel]), np.log10(c.m200_pred[sel]), c.log10_err[sel])
        ax.plot(cov["reliability"]["nominal"], cov["reliability"]["observed"], marker="o", ms=3, **_style(k, c),
                label=f"{c.name}: 68 % → {100 * cov['68']['observed']:.0f} %, 95 % → {100 * cov['95']['observed']:.0f} %")
    ax.set_xlabel("nominal coverage of the ±zσ interval")
    ax.set_ylabel("fraction of test images inside")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"Predicted errors, {CENTRAL_RANGE[0]} < log M200 < {CENTRAL_RANGE[1]}", fontsize=9)
    fig.tight_layout()
    return save_png(fig, out, dpi)
