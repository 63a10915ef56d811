"""The relations figure of a synthetic universe (matplotlib, Agg backend).

Every panel shows values measured back from the particles
(:func:`cmcore.synth.measure.measure`), from rendered images
(:func:`cmcore.synth.measure.image_luminosities`) or drawn by the generator
(``synth.json``) against a literature relation; each gas relation has a
residual panel, log₁₀(measured / literature), with the literature's intrinsic
scatter shaded and the median offsets (:func:`cmcore.synth.literature.offsets`)
in its title.  The offsets are also written into ``synth.json``
(``literature_offsets``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileio import atomic_write
from . import relations as rel
from .literature import RELATIONS, offsets
from .measure import image_luminosities, measure

#: Placement redshift of the images the soft-band luminosities are measured on.
IMAGE_REDSHIFT = 0.05


def plot_relations(directory: str | os.PathLike, out: str | os.PathLike, dpi: int = 110,
                   images: bool = True) -> tuple[Path, dict]:
    """Write the relations figure of the universe in ``directory`` to ``out``.

    Top row: field-halo mass function vs Tinker et al. 2008; M200 measured vs
    drawn; c200 vs Diemer & Joyce 2019; central M*–M200 vs Moster et al. 2013.
    Below, each relation of :data:`cmcore.synth.literature.RELATIONS` with its
    residual panel: L_X(0.5–2 keV) within R500 from the particles and from
    ``Fxs`` images (Pratt et al. 2009), Y500 (Arnaud et al. 2010), T_sl
    (Arnaud et al. 2005), f_gas (Vikhlinin et al. 2009).  The figure is
    written atomically; the offsets are added to ``synth.json`` (atomically).

    Parameters
    ----------
    directory : path-like
        Output folder of ``cmc synth``.
    out : path-like
        Figure to write; its suffix sets the format (png, pdf, svg).
    dpi : int
        Resolution of raster formats.
    images : bool
        Also render the ``Fxs`` images and measure L_X from them.

    Returns
    -------
    (Path, dict)
        The figure's path and the offsets (:func:`cmcore.synth.literature.offsets`).

    Raises
    ------
    InputError
        ``directory`` is not a complete synth output.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    files = [directory / n for n in ("snapshot.hdf5", "halos.h5", "synth.json")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{directory} is not a complete `cmc synth` output (missing {', '.join(missing)})")
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    meta = json.loads(files[2].read_text())
    drawn = {k: np.asarray(v) for k, v in meta["targets"].items()}
    got = measure(files[0], files[1])
    order = np.argsort(got["halo_id"])
    got = {k: np.asarray(v)[order] for k, v in got.items()}
    if images:
        got["lx_soft_image"] = image_luminosities(files[0], _catalogue_centres(files[1], got),
                                                  got["r500"], redshift=IMAGE_REDSHIFT)
    found = offsets(got)
    m_grid = np.geomspace(10**12.8, 10**15.3, 100)

    panels = [r for r in RELATIONS if r.key in got]
    ncol = max(4, len(panels))
    fig = plt.figure(figsize=(3.6 * ncol, 11.5))
    grid = fig.add_gridspec(3, ncol, height_ratios=[1.0, 1.0, 0.45], hspace=0.45, wspace=0.32)
    top = [fig.add_subplot(grid[0, j]) for j in range(4)]
    _top_row(top, meta, drawn, got, m_grid)
    for j, r in enumerate(panels):
        ax = fig.add_subplot(grid[1, j])
        res = fig.add_subplot(grid[2, j], sharex=ax)
        value = got[r.key]
        ok = value > 0
        ax.loglog(got["m500"][ok], value[ok], ".", ms=4, label="measured")
        mean = r.mean(m_grid)
        ax.plot(m_grid, mean, "k-", label=r.source)
        for sign in (-1, 1):
            ax.plot(m_grid, mean * 10 ** (sign * r.scatter_dex), "k:")
        ax.axvspan(*r.m_range, color="0.92", zorder=0, label="observed sample")
        entry = found[r.key]
        title = r.key.replace("_", " ")
        for name in ("1e14-3e14", "groups_1e13-1e14"):
            if entry[name]["n"]:
                title += f"\n{name}: ×{entry[name]['ratio']:.2f}"
        ax.set(ylabel=r.label, title=title)
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6)
        resid = np.log10(value[ok] / r.mean(got["m500"][ok]))
        res.semilogx(got["m500"][ok], resid, ".", ms=4)
        res.axhspan(-r.scatter_dex, r.scatter_dex, color="0.85", zorder=0)
        res.axhline(0.0, color="k")
        res.set(xlabel="M500 [M☉]", ylabel="log(meas./lit.)", ylim=(-0.6, 0.6))
    fig.suptitle(f"cmc synth preset={meta['config']['name']} seed={meta['seed']} "
                 f"({meta['n_targets']} targets, code {meta['code_version']})")
    with atomic_write(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt)
    plt.close(fig)
    meta["literature_offsets"] = found
    with atomic_write(files[2]) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return out, found


def _catalogue_centres(halos: Path, got: dict) -> np.ndarray:
    from ..halos import read_halos

    cat = read_halos(halos)
    by_id = dict(zip(cat.halo_id.tolist(), range(len(cat))))
    return cat.centre[[by_id[int(i)] for i in got["halo_id"]]]


def _top_row(ax, meta: dict, drawn: dict, got: dict, m_grid: np.ndarray) -> None:
    """Mass function, M200 measured vs drawn, c200, central M*–M200."""
    mf = meta["field_mass_function"]
    edges = np.asarray(mf["log10_m_edges"])
    n, e = np.asarray(mf["drawn"]), np.asarray(mf["expected"])
    mid = 0.5 * (edges[1:] + edges[:-1])
    ok = e >= 1.0
    ax[0].errorbar(10 ** mid[ok], n[ok] / e[ok], yerr=np.sqrt(np.maximum(n[ok], 1)) / e[ok],
                   fmt="o", ms=3, label="drawn / expected (Poisson errors)")
    ax[0].axhline(1.0, color="k", label="Tinker et al. 2008")
    ax[0].set(xscale="log", xlabel="M200c [M☉]", ylabel="N / N_expected", ylim=(0, 2),
              title="field-halo mass function")

    ax[1].loglog(drawn["m200"], got["m200"], ".", label="targets")
    ax[1].plot(m_grid, m_grid, "k-", label="1:1")
    ax[1].set(xlabel="M200 drawn [M☉]", ylabel="M200 from particles [M☉]", title="cluster masses")

    ax[2].loglog(drawn["m200"], drawn["c200"], ".", label="drawn")
    c_mean = rel.concentration_mean(m_grid)
    ax[2].plot(m_grid, c_mean, "k-", label="Diemer & Joyce 2019")
    for sign in (-1, 1):
        ax[2].plot(m_grid, c_mean * 10 ** (sign * rel.CONCENTRATION_SCATTER_DEX), "k:")
    ax[2].set(xlabel="M200c [M☉]", ylabel="c200c", title="concentration (±0.16 dex)")

    ax[3].loglog(got["m200"], got["mstar_central"], ".", label="M*(<50 kpc) from particles")
    ms = rel.stellar_mass_central(m_grid)
    ax[3].plot(m_grid, ms, "k-", label="Moster et al. 2013")
    for sign in (-1, 1):
        ax[3].plot(m_grid, ms * 10 ** (sign * rel.SHMR_SCATTER_DEX), "k:")
    ax[3].set(xlabel="M200c [M☉]", ylabel="M* central [M☉]", title="stellar-to-halo mass")
    for a_ in ax:
        a_.legend(fontsize=7)
