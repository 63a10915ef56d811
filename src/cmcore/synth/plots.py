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
from . import stars
from .cosmo import COSMOLOGY
from .literature import RELATIONS, offsets, slopes
from .measure import image_luminosities, measure

#: Placement redshift of the images the soft-band luminosities are measured on.
IMAGE_REDSHIFT = 0.05


def plot_relations(directory: str | os.PathLike, out: str | os.PathLike, dpi: int = 110,
                   images: bool = True, measured: str | os.PathLike | None = None,
                   progress: bool = False) -> tuple[Path, dict]:
    """Write the relations figure of the universe in ``directory`` to ``out``.

    Top row: field-halo mass function vs Tinker et al. 2008; M200 measured vs
    drawn; c200 vs Diemer & Joyce 2019; richness–M200.  Below, each relation of :data:`cmcore.synth.literature.RELATIONS` with its
    residual panel: L_X(0.5–2 keV) within R500 from the particles and from
    ``Fxs`` images (Pratt et al. 2009), Y500 (Arnaud et al. 2010), T_sl
    (Arnaud et al. 2005), f_gas (Vikhlinin et al. 2009).  Bottom row, the stars
    (:func:`plot_stellar_panels`): satellites, M*(<50 kpc) and BCG + ICL vs
    Kravtsov et al. 2018, the stellar fraction within R500 vs Kravtsov et al.
    2018 and Gonzalez et al. 2013.  The figure is
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
    measured : path-like, optional
        NumPy ``.npz`` file of the measured values: read from there when it
        exists (the figure and offsets are then redrawn without reading the
        snapshot), else measured and written there (atomically).
    progress : bool
        Progress bars over the passes through the snapshot.

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
    got = _measured(files, images, None if measured is None else Path(measured), progress)
    found = offsets(got)
    m_grid = np.geomspace(10**12.8, 10**15.3, 100)

    panels = [r for r in RELATIONS if r.key in got]
    ncol = max(4, len(panels))
    fig = plt.figure(figsize=(3.6 * ncol, 15.5))
    grid = fig.add_gridspec(4, ncol, height_ratios=[1.0, 1.0, 0.45, 1.0], hspace=0.45, wspace=0.32)
    top = [fig.add_subplot(grid[0, j]) for j in range(4)]
    _top_row(top, meta, drawn, got, m_grid)
    plot_stellar_panels([*(fig.add_subplot(grid[3, j]) for j in range(4)), top[3]], got, m_grid)
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
    meta["literature_slopes"] = slopes(got)
    with atomic_write(files[2]) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return out, found


def _measured(files: list[Path], images: bool, cache: Path | None, progress: bool) -> dict:
    """The measured values in halo-id order: from ``cache`` if it exists, else measured (and cached)."""
    if cache is not None and cache.is_file():
        with np.load(cache) as f:
            got = {k: f[k] for k in f.files}
        if images and "lx_soft_image" not in got:
            raise InputError(f"{cache} holds no image luminosities: measure again without it, or pass --no-images")
        if not images:
            got.pop("lx_soft_image", None)
        return got
    got = measure(files[0], files[1], progress=progress)
    order = np.argsort(got["halo_id"])
    got = {k: np.asarray(v)[order] for k, v in got.items()}
    if images:
        got["lx_soft_image"] = image_luminosities(files[0], _catalogue_centres(files[1], got),
                                                  got["r500"], redshift=IMAGE_REDSHIFT,
                                                  progress=progress)
    if cache is not None:
        with atomic_write(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **got)
    return got


def _catalogue_centres(halos: Path, got: dict) -> np.ndarray:
    from ..halos import read_halos

    cat = read_halos(halos)
    by_id = dict(zip(cat.halo_id.tolist(), range(len(cat))))
    return cat.centre[[by_id[int(i)] for i in got["halo_id"]]]


def _top_row(ax, meta: dict, drawn: dict, got: dict, m_grid: np.ndarray) -> None:
    """Mass function, M200 measured vs drawn, c200 (the fourth axis: richness)."""
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

    for a_ in ax[:3]:
        a_.legend(fontsize=7)


#: Kravtsov et al. 2018 clusters (h70): M500 [M☉] and total stellar mass within R500 [M☉].
KVM18_M500 = np.array([15.60, 10.30, 7.00, 5.34, 2.35, 1.86, 1.34, 0.46, 0.47]) * 1e14
KVM18_MSTAR500 = np.array([15.34, 12.35, 8.34, 5.48, 2.68, 3.48, 2.86, 1.88, 1.85]) * 1e12
#: Gonzalez et al. 2013 (ApJ 778, 14) Tables 2-3 (WMAP7 h = 0.702): M500 [1e14 M☉], f*,500 (3D), error.
GONZALEZ13 = np.array([
    [2.26, 0.024, 0.002], [5.15, 0.013, 0.001], [0.95, 0.028, 0.003], [3.46, 0.017, 0.002],
    [3.59, 0.013, 0.002], [0.99, 0.030, 0.004], [0.95, 0.041, 0.005], [3.23, 0.022, 0.002],
    [2.26, 0.023, 0.003], [2.41, 0.023, 0.003], [2.37, 0.022, 0.003], [1.45, 0.020, 0.003],
])


def plot_stellar_panels(axes, got: dict, m_grid: np.ndarray) -> None:
    """Stellar panels, measured from the particles against the literature.

    ``axes``: five axes for satellites within R500, M*(<50 kpc), BCG + ICL
    within R500 (Kravtsov et al. 2018), the stellar fraction within R500
    (Kravtsov et al. 2018; Gonzalez et al. 2013) and the richness–M200 relation.
    """
    a_sat, a_bcg, a_icl, a_frac, a_rich = axes
    m_grid = m_grid[m_grid < 2e15]

    def band(ax, y, scatter, label):
        ax.plot(m_grid, y, "k-", label=label)
        for sign in (-1, 1) if scatter else ():
            ax.plot(m_grid, y * 10 ** (sign * scatter), "k:")

    a_sat.loglog(got["m500"], np.maximum(got["mstar_sat500"], 1e9), ".", label="from particles")
    band(a_sat, stars.satellite_mass_500(m_grid), stars.SAT_SCATTER_DEX,
         "Kravtsov et al. 2018 satellites (slope 0.87, ±1σ)")
    a_sat.set(xlabel="M500 [M☉]", ylabel="M* satellites (<R500) [M☉]", title="satellite stellar mass")

    a_bcg.loglog(got["m500"], got["mstar_central"], ".", label="M*(<50 kpc) from particles")
    band(a_bcg, stars.median_central_within(m_grid), stars.BCG_ICL_SCATTER_DEX,
         "Kravtsov et al. 2018 BCG+ICL, share in 50 kpc")
    a_bcg.plot(m_grid, stars.bcg_icl_mass(m_grid), "C3--", label="Kravtsov et al. 2018 BCG+ICL")
    a_bcg.set(xlabel="M500 [M☉]", ylabel="M* (<50 kpc) [M☉]", title="central galaxy (BCG)")

    a_icl.loglog(got["m500"], got["mstar_bcg_icl500"], ".", label="BCG + ICL (<R500) from particles")
    band(a_icl, stars.bcg_icl_mass(m_grid), stars.BCG_ICL_SCATTER_DEX, "Kravtsov et al. 2018")
    a_icl.set(xlabel="M500 [M☉]", ylabel="M* BCG+ICL [M☉]", title="BCG + intracluster light")

    a_frac.loglog(got["m500"], got["mstar500"] / got["m500"], ".", label="all stars (<R500) / M500")
    f_line = stars.total_stellar_mass_500(m_grid) / m_grid
    band(a_frac, f_line, stars.TOTAL_SCATTER_DEX, "fit to Kravtsov et al. 2018 (±1σ)")
    a_frac.plot(KVM18_M500, KVM18_MSTAR500 / KVM18_M500, "ks", mfc="none", label="Kravtsov et al. 2018")
    h_conv = 0.702 / COSMOLOGY.h  # their WMAP7 h; M500 ∝ 1/h (X-ray), M* ∝ 1/h² (light), f* ∝ 1/h
    a_frac.errorbar(GONZALEZ13[:, 0] * 1e14 * h_conv, GONZALEZ13[:, 1] * h_conv,
                    yerr=GONZALEZ13[:, 2] * h_conv, fmt="C3^",
                    ms=4, label="Gonzalez et al. 2013")
    a_frac.set(xlabel="M500 [M☉]", ylabel="f*(<R500)", title="stellar fraction", ylim=(3e-3, 0.1))

    a_rich.loglog(got["m200"], np.maximum(got["richness200"], 0.5), ".",
                  label="N(M* ≥ 1e10 M☉, <R200) from particles")
    c = rel.concentration_mean(m_grid)
    x500 = rel.nfw_r500_over_r200(c)
    m500 = m_grid * rel.nfw_mu(c * x500) / rel.nfw_mu(c)
    n = stars.richness_mean(m500, x500)
    a_rich.plot(m_grid, n, "k-", label="model mean (CSMF × KVM18 satellites)")
    pivot = np.argmin(np.abs(m_grid - 3e14))
    a_rich.plot(m_grid, n[pivot] * (m_grid / m_grid[pivot]) ** 0.84, "C3--",
                label="slope 0.84 (Lin, Mohr & Stanford 2004)")
    a_rich.set(xlabel="M200c [M☉]", ylabel="richness", title="richness–M200")
    for a_ in axes:
        a_.legend(fontsize=6)
