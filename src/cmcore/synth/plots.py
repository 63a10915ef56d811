"""The relations figure of a synthetic universe (matplotlib, Agg backend).

Every panel shows values measured back from the particles
(:func:`cmcore.synth.measure.measure`) or drawn by the generator
(``synth.json``) against the literature relation they were built from.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..readers.units import M_PROTON_G, MPC_CM, MSUN_G
from . import relations as rel
from .cosmo import COSMOLOGY
from .measure import fit_power_law, measure

#: Thermal bremsstrahlung emissivity ε = C_FF ḡ T^½ n_e n_i [erg s⁻¹ cm⁻³]
#: (Rybicki & Lightman 1979, frequency-averaged Gaunt factor ḡ ≈ 1.2).
C_FF, GAUNT = 1.42e-27, 1.2


def bremsstrahlung_luminosity(proxy) -> np.ndarray:
    """Bolometric bremsstrahlung luminosity [erg/s] from the proxy Σ m ρ T^½ [M☉² Mpc⁻³ K^½]."""
    per = MSUN_G**2 / MPC_CM**3 / (rel.MU_E * rel.MU_I * M_PROTON_G**2)
    return C_FF * GAUNT * per * np.asarray(proxy)


def plot_relations(directory: str | os.PathLike, out: str | os.PathLike, dpi: int = 110) -> Path:
    """Write the relations figure of the universe in ``directory`` to ``out``.

    Panels: field-halo mass function vs Tinker et al. 2008; M200 measured vs
    drawn; c200 vs Diemer & Joyce 2019; T_sl–M500 vs Arnaud et al. 2005;
    f_gas,500–M500 vs the BAHAMAS-like input; Y500–M500 vs Arnaud et al. 2010;
    bremsstrahlung L_X–M500 vs the model's mean; central M*–M200 vs Moster et
    al. 2013.

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
    meta = json.loads(files[2].read_text())
    drawn = {k: np.asarray(v) for k, v in meta["targets"].items()}
    got = measure(files[0], files[1])
    order = np.argsort(got["halo_id"])
    got = {k: np.asarray(v)[order] for k, v in got.items()}
    m_grid = np.geomspace(10**12.8, 10**15.3, 100)
    h70 = COSMOLOGY.H0.value / 70.0

    fig, axes = plt.subplots(2, 4, figsize=(17, 8.2))
    ax = axes.flat
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

    kev = rel.KEV_K
    ax[3].loglog(got["m500"], got["t_sl"] / kev, ".", label="T_sl(0.15–1 R500) from particles")
    ax[3].plot(m_grid, 5.0 * (m_grid * h70 / rel.MT_NORM) ** (1 / rel.MT_SLOPE), "k-",
               label="Arnaud et al. 2005")
    ax[3].set(xlabel="M500 [M☉]", ylabel="kT [keV]", title="M–T")

    ax[4].semilogx(got["m500"], got["f_gas500"], ".", label="from particles")
    ax[4].plot(m_grid, rel.hot_gas_fraction_500(m_grid), "k-", label="input (BAHAMAS-like)")
    ax[4].axhline(COSMOLOGY.Ob0 / COSMOLOGY.Om0, color="grey", ls="--", label="Ω_b/Ω_m")
    ax[4].set(xlabel="M500 [M☉]", ylabel="f_gas(<R500)", title="hot-gas fraction")

    ax[5].loglog(got["m500"], got["y500"], ".", label="from particles")
    ax[5].plot(m_grid, 10**-4.739 * (m_grid * h70 / 3e14) ** 1.79 * h70 ** -2.5, "k-",
               label="Arnaud et al. 2010")
    ax[5].set(xlabel="M500 [M☉]", ylabel="Y500 [Mpc²]", title="Y–M")

    lx = bremsstrahlung_luminosity(got["lx_proxy"])
    a, b, s = fit_power_law(drawn["m500"], bremsstrahlung_luminosity(drawn["lx_proxy_intended"]))
    ax[6].loglog(got["m500"], lx, ".", label="from particles")
    ax[6].plot(m_grid, 10**a * m_grid**b, "k-", label=f"model mean, slope {b:.2f}")
    ax[6].set(xlabel="M500 [M☉]", ylabel="L_bol,ff(<R500) [erg/s]",
              title="bremsstrahlung L_X–M (no literature line)")

    ax[7].loglog(got["m200"], got["mstar_central"], ".", label="M*(<50 kpc) from particles")
    ms = rel.stellar_mass_central(m_grid)
    ax[7].plot(m_grid, ms, "k-", label="Moster et al. 2013")
    for sign in (-1, 1):
        ax[7].plot(m_grid, ms * 10 ** (sign * rel.SHMR_SCATTER_DEX), "k:")
    ax[7].set(xlabel="M200c [M☉]", ylabel="M* central [M☉]", title="stellar-to-halo mass")
    for a_ in ax:
        a_.legend(fontsize=7)
    fig.suptitle(f"cmc synth preset={meta['config']['name']} seed={meta['seed']} "
                 f"({meta['n_targets']} targets, code {meta['code_version']})")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
