"""Figures of cmc datasets (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .datafile import open_dataset
from .fileio import atomic_write


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, out: str | os.PathLike, dpi: int) -> Path:
    """Write ``fig`` to the PNG ``out`` atomically (parents created) and close it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
    return out


def dataset_montage(path: str | os.PathLike, out: str | os.PathLike, *, n_halos: int = 4, dpi: int = 110) -> Path:
    """Images of a few clusters of increasing mass in every channel (like Fig. 2 of the paper).

    One row per cluster (chosen at evenly spaced quantiles of log M200 among the
    dataset's images), one column per channel, each panel with the R200 circle.
    Colours are ``arcsinh(I / s)`` with ``s`` the channel's median absolute pixel
    value over the shown images, so that noise, outskirts and cores are all visible.

    Parameters
    ----------
    path
        A cmc dataset file.
    out
        PNG file to write.
    n_halos
        Number of rows.
    dpi
        Resolution of the PNG.

    Returns
    -------
    Path
        The written file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    with open_dataset(path) as f:
        channels = list(f.attrs["channels"])
        units = json.loads(f.attrs["units"])
        fov = float(f.attrs["fov_arcmin"])
        logm = f["labels/log10_m200"][:]
        order = np.argsort(logm, kind="stable")
        picks = order[np.linspace(0, logm.size - 1, min(n_halos, logm.size)).round().astype(int)]
        labels = {k: f[f"labels/{k}"][:][picks] for k in ("log10_m200", "redshift", "theta200_arcmin", "halo_id")}
        images = {c: f[f"images/{c}"][np.sort(picks)] for c in channels}
        # h5py needs increasing indices: put rows back in mass order
        back = np.argsort(np.argsort(picks))
        images = {c: v[back] for c, v in images.items()}

    nrow, ncol = len(picks), len(channels)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.5 * nrow), squeeze=False)
    extent = (-fov / 2, fov / 2, -fov / 2, fov / 2)
    for j, c in enumerate(channels):
        scale = float(np.median(np.abs(images[c]))) or float(np.abs(images[c]).max()) or 1.0
        for i in range(nrow):
            ax = axes[i, j]
            im = ax.imshow(np.arcsinh(images[c][i] / scale), origin="lower", extent=extent, cmap="magma")
            theta = labels["theta200_arcmin"][i]
            ax.add_patch(plt.Circle((0, 0), theta, fill=False, color="cyan", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{c} [{units[c]}]", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"log M200 = {labels['log10_m200'][i]:.2f}\nz = {labels['redshift'][i]:.3f}", fontsize=8)
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            cb.ax.tick_params(labelsize=6)
            cb.set_label(f"asinh(I / {scale:.2g})", fontsize=6)
    fig.suptitle(f"{Path(path).name}: {fov:g}′ fields, R200 circles", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, out)
    return out
