"""Relations measured back from the particles of a snapshot, as an observer would.

For every halo of a catalogue (centre, R200 from the particles) this gives,
from the particles alone (periodic, spherical apertures):

* M500, R500 from :func:`cmcore.halos.spherical_overdensity` with Δ = 500;
* Y500 = Σ σ_T k T/(m_e c²) · m/(μ_e m_p) over gas within R500 [Mpc²];
* an L_X proxy Σ m ρ T^½ within R500 (thermal bremsstrahlung ∝ ρ² T^½ per
  volume; the full emission model is :mod:`cmcore.emission`);
* M_gas,500, f_gas,500 = M_gas/M500;
* the spectroscopic-like temperature in 0.15–1 R500, weights ρ m T^−3/4
  (Mazzotta et al. 2004), and the mass-weighted one within R500;
* the stellar mass within 50 kpc (the central galaxy) and within R500.
"""
from __future__ import annotations

import os

import numpy as np
from scipy.spatial import cKDTree

from ..halos import read_halos, spherical_overdensity
from ..readers import read_snapshot
from .relations import bremsstrahlung_proxy, compton_y_per_particle

#: Aperture of the central galaxy's stellar mass [Mpc].
CENTRAL_APERTURE = 0.05


def measure(snapshot: str | os.PathLike, halos: str | os.PathLike) -> dict:
    """Measure the relations of every halo of ``halos`` from ``snapshot``.

    Returns
    -------
    dict of ndarray
        ``halo_id``, ``m200``, ``r200`` (from the catalogue), ``m500``, ``r500``,
        ``y500`` [Mpc²], ``lx_proxy`` [M☉² Mpc⁻³ K^½], ``m_gas500``,
        ``f_gas500``, ``t_sl`` [K], ``t_mw500`` [K], ``mstar_central``,
        ``mstar500`` [M☉].
    """
    snap = read_snapshot(snapshot)
    cat = read_halos(halos)
    box = snap.boxsize
    rho_c = float(snap.cosmology.critical_density(snap.redshift).to("Msun / Mpc3").value)
    types = [snap.particles[t] for t in ("gas", "dm", "stars") if t in snap.particles]
    m500, r500 = spherical_overdensity([p.positions for p in types], [p.masses for p in types],
                                       cat.centre, box, rho_c, delta=500.0)
    gas, stars = snap.particles["gas"], snap.particles.get("stars")
    gas_tree = cKDTree(np.mod(gas.positions, box), boxsize=box)
    star_tree = cKDTree(np.mod(stars.positions, box), boxsize=box) if stars is not None else None
    rho, temp = gas.fields["density"].astype(float), gas.fields["temperature"].astype(float)
    out = {k: np.zeros(len(cat)) for k in ("y500", "lx_proxy", "m_gas500", "t_sl", "t_mw500",
                                           "mstar_central", "mstar500")}
    for i, (centre, r5) in enumerate(zip(np.mod(cat.centre, box), r500)):
        idx = np.asarray(gas_tree.query_ball_point(centre, r5), dtype=np.intp)
        d = gas.positions[idx] - centre
        d -= box * np.round(d / box)
        r = np.linalg.norm(d, axis=1)
        m, t, rh = gas.masses[idx], temp[idx], rho[idx]
        out["y500"][i] = compton_y_per_particle(m, t).sum()
        out["lx_proxy"][i] = bremsstrahlung_proxy(m, rh, t).sum()
        out["m_gas500"][i] = m.sum()
        out["t_mw500"][i] = np.sum(m * t) / max(m.sum(), 1e-300)
        ring = r > 0.15 * r5
        w = rh[ring] * m[ring] * t[ring] ** -0.75
        out["t_sl"][i] = np.sum(w * t[ring]) / w.sum() if w.size else np.nan
        if star_tree is not None:
            for key, radius in (("mstar_central", CENTRAL_APERTURE), ("mstar500", r5)):
                out[key][i] = stars.masses[star_tree.query_ball_point(centre, radius)].sum()
    out.update(halo_id=cat.halo_id, m200=cat.m200, r200=cat.r200, m500=m500, r500=r500,
               f_gas500=out["m_gas500"] / m500)
    return out


def fit_power_law(x, y) -> tuple[float, float, float]:
    """Least-squares fit log10 y = a + b log10 x; returns (a, b, rms scatter in dex)."""
    lx, ly = np.log10(x), np.log10(y)
    b, a = np.polyfit(lx, ly, 1)
    return float(a), float(b), float(np.sqrt(np.mean((ly - a - b * lx) ** 2)))
