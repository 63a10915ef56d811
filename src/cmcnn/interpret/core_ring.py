"""Core and ring signal against true mass (Yan et al. 2020, §4, last paragraph).

For every image of a dataset and every channel:

    F_cent = Σ I_ij  over pixels with        r < 0.15 θ200
    F_ring = Σ I_ij  over pixels with 0.15 θ200 ≤ r < θ200

with r the angular distance of the pixel centre from the image centre (the
cluster centre) and θ200 = R200/d_A the dataset's ``labels/theta200_arcmin``.
The sums are in the channel's pixel units (a constant factor, the pixel area,
does not change a correlation).  The paper quotes "a correlation coefficient"
of 0.58 (core) and 0.94 (ring) with the true mass for both X-ray channels
without saying which; as for scaling relations, the primary figure here is
**Pearson's r between log10 F and log10 M200** (images with F ≤ 0, possible in
noisy channels, are left out and counted); Spearman's rank coefficient, which
needs no logarithm, is given beside it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cmcore.datafile import open_dataset, read_labels, split_code
from cmcore.errors import FileFormatError, InputError
from cmcore.figures import save_png

#: Inner radius of the ring in units of θ200 (the paper's 0.15 R200).
CORE_FRACTION = 0.15


def radii_arcmin(npix: int, pixel_arcsec: float) -> np.ndarray:
    """(npix, npix) distance of each pixel centre from the image centre [arcmin]."""
    c = (npix - 1) / 2.0
    i = np.arange(npix) - c
    return np.hypot(i[:, None], i[None, :]) * pixel_arcsec / 60.0


def core_ring_sums(images: np.ndarray, theta200_arcmin: np.ndarray, pixel_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """F_cent and F_ring of (n, npix, npix) images with their θ200 [arcmin]."""
    images = np.asarray(images, dtype=np.float64)
    r = radii_arcmin(images.shape[1], pixel_arcsec)[None]
    t = np.asarray(theta200_arcmin, dtype=np.float64)[:, None, None]
    core = r < CORE_FRACTION * t
    ring = (r >= CORE_FRACTION * t) & (r < t)
    return (images * core).sum(axis=(1, 2)), (images * ring).sum(axis=(1, 2))


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size)
    # average ties
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return (sums / counts)[inv]


def correlations(f: np.ndarray, log10_m: np.ndarray) -> dict:
    """Pearson r of log10 F vs log10 M (F > 0 only) and Spearman's ρ of F vs M (all)."""
    f, log10_m = np.asarray(f, float), np.asarray(log10_m, float)
    pos = f > 0
    out = {"n": int(f.size), "n_nonpositive": int((~pos).sum())}
    out["pearson_log"] = (float(np.corrcoef(np.log10(f[pos]), log10_m[pos])[0, 1])
                          if pos.sum() > 2 else float("nan"))
    out["spearman"] = float(np.corrcoef(_ranks(f), _ranks(log10_m))[0, 1]) if f.size > 2 else float("nan")
    return out


def core_ring_analysis(data: str | os.PathLike, channels: list[str] | None = None, split: str | None = None,
                       batch: int = 512) -> dict:
    """F_cent, F_ring and their correlations with M200 for every channel of a dataset.

    Parameters
    ----------
    data : path-like
        A cmc dataset (needs ``labels/theta200_arcmin``).
    channels : list of str, optional
        Channels to analyse (default: all in the file).
    split : {"train", "validation", "test"}, optional
        Only the images of one split (default: all).

    Returns
    -------
    dict
        ``{"rows": [per channel: channel, region, n, n_nonpositive, pearson_log, spearman],
        "sums": {channel: (F_cent, F_ring)}, "log10_m200": ..., "pixel_arcsec": ...}``.
    """
    with open_dataset(Path(data)) as f:
        names = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["channels"]]
        channels = names if channels is None else channels
        missing = [c for c in channels if c not in names]
        if missing:
            raise InputError(f"{data} has no channel(s) {missing} (it holds {names})")
        try:
            labels = read_labels(f, ("log10_m200", "theta200_arcmin", "split"))
        except FileFormatError as exc:
            raise InputError(str(exc)) from None
        rows = np.arange(labels["split"].size) if split is None else np.flatnonzero(labels["split"] == split_code(split))
        if rows.size < 3:
            raise InputError(f"{data}: need at least 3 images, have {rows.size}")
        logm = labels["log10_m200"][rows]
        theta = labels["theta200_arcmin"][rows]
        pix = float(f.attrs["pixel_scale_arcsec"])
        sums, table = {}, []
        for ch in channels:
            cent, ring = np.empty(rows.size), np.empty(rows.size)
            for s in range(0, rows.size, batch):
                sel = rows[s:s + batch]
                cent[s:s + sel.size], ring[s:s + sel.size] = core_ring_sums(
                    f[f"images/{ch}"][sel[0]:sel[-1] + 1][sel - sel[0]], theta[s:s + sel.size], pix)
            sums[ch] = (cent, ring)
            for region, values in (("core r<0.15R200", cent), ("ring 0.15-1 R200", ring)):
                table.append({"channel": ch, "region": region, **correlations(values, logm)})
    return {"rows": table, "sums": sums, "log10_m200": logm, "pixel_arcsec": pix, "n_images": int(rows.size)}


def format_table(result: dict) -> str:
    """The correlation table as text."""
    lines = [f"{'channel':<8} {'region':<18} {'n':>6} {'F<=0':>5} {'pearson(log)':>13} {'spearman':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['channel']:<8} {r['region']:<18} {r['n']:>6} {r['n_nonpositive']:>5} "
                     f"{r['pearson_log']:>13.3f} {r['spearman']:>9.3f}")
    return "\n".join(lines)


def plot_core_ring(result: dict, out: str | os.PathLike, dpi: int = 110) -> Path:
    """One panel per channel: log10 F_cent and log10 F_ring against log10 M200."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chans = list(result["sums"])
    fig, axes = plt.subplots(1, len(chans), figsize=(3.6 * len(chans), 3.4), squeeze=False)
    logm = result["log10_m200"]
    stats = {(r["channel"], r["region"][:4]): r for r in result["rows"]}
    for ax, ch in zip(axes[0], chans):
        for values, label, colour in ((result["sums"][ch][0], "core", "tab:red"),
                                      (result["sums"][ch][1], "ring", "tab:blue")):
            pos = values > 0
            r = stats[(ch, label)]["pearson_log"]
            ax.scatter(logm[pos], np.log10(values[pos]), s=4, alpha=0.5, color=colour,
                       label=f"{label}: r = {r:.2f}")
        ax.set_xlabel(r"true $\log_{10} M_{200}$ [M$_\odot$]")
        ax.set_ylabel(r"$\log_{10} F$ [pixel units]")
        ax.set_title(ch)
        ax.legend(fontsize=8, markerscale=3)
    fig.tight_layout()
    return save_png(fig, out, dpi)
