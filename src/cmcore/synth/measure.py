"""Relations measured back from the particles of a snapshot, as an observer would.

For every halo of a catalogue (centre, R200 from the particles) this gives,
from the particles alone (periodic, spherical apertures):

* M500, R500 from :func:`cmcore.halos.spherical_overdensity` with Δ = 500;
* Y500 = Σ σ_T k T/(m_e c²) · m/(μ_e m_p) over gas within R500 [Mpc²];
* an L_X proxy Σ m ρ T^½ within R500 (thermal bremsstrahlung ∝ ρ² T^½ per
  volume);
* the soft (0.5–2 keV) and bolometric X-ray luminosities within R500,
  Σ L over the gas particles with the renderer's own per-particle model
  (:func:`cmcore.observables.xray_luminosities`, :mod:`cmcore.emission`);
* M_gas,500, f_gas,500 = M_gas/M500;
* the spectroscopic-like temperature in 0.15–1 R500, weights ρ m T^−3/4
  (Mazzotta et al. 2004), and the mass-weighted one within R500;
* the stellar mass within 50 kpc (the central galaxy) and within R500;
* from the star particles' IDs (which galaxy of which halo each belongs to, as a
  subhalo finder would give): the BCG + ICL and the satellite stellar mass
  within R500, and the richness, the number of the halo's satellites with
  M* >= 10¹⁰ M☉ within R200.

:func:`image_luminosities` measures the soft-band luminosity as an observer
does: the ``Fxs`` flux of a rendered, noise-free image summed inside the
projected R500 and multiplied by 4π d_L².
"""
from __future__ import annotations

import os

import h5py
import numpy as np
from scipy.spatial import cKDTree

from ..halos import read_halos, spherical_overdensity
from ..observables import default_cosmology, xray_luminosities
from ..readers import read_snapshot
from ..snapshot import ParticleData
from .relations import KEV_K, bremsstrahlung_proxy, compton_y_per_particle
from .stars import BCG_APERTURE, FIRST_SATELLITE, GALAXY_SHIFT, RICHNESS_MIN_MASS

#: Aperture of the central galaxy's stellar mass [Mpc].
CENTRAL_APERTURE = BCG_APERTURE


def measure(snapshot: str | os.PathLike, halos: str | os.PathLike) -> dict:
    """Measure the relations of every halo of ``halos`` from ``snapshot``.

    Returns
    -------
    dict of ndarray
        ``halo_id``, ``m200``, ``r200`` (from the catalogue), ``m500``, ``r500``,
        ``y500`` [Mpc²], ``lx_proxy`` [M☉² Mpc⁻³ K^½], ``m_gas500``,
        ``f_gas500``, ``t_sl`` [K], ``t_sl_kev``, ``t_mw500`` [K],
        ``lx_soft500``, ``lx_bol500`` [erg/s], ``mstar_central``, ``mstar500``,
        ``mstar_bcg_icl500``, ``mstar_sat500`` [M☉], ``richness200``.
    """
    from .universe import decode_ids

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
                                           "lx_soft500", "lx_bol500", "mstar_central",
                                           "mstar500", "mstar_bcg_icl500", "mstar_sat500",
                                           "richness200")}
    if stars is not None:
        with h5py.File(snapshot, "r") as f:
            uid, _, index = decode_ids(f["PartType4/ParticleIDs"][:])
        galaxy = index >> GALAXY_SHIFT
    for i, (centre, r5) in enumerate(zip(np.mod(cat.centre, box), r500)):
        idx = np.asarray(gas_tree.query_ball_point(centre, r5), dtype=np.intp)
        d = gas.positions[idx] - centre
        d -= box * np.round(d / box)
        r = np.linalg.norm(d, axis=1)
        m, t, rh = gas.masses[idx], temp[idx], rho[idx]
        out["y500"][i] = compton_y_per_particle(m, t).sum()
        inside = ParticleData(gas.positions[idx], m, {k: v[idx] for k, v in gas.fields.items()},
                              name="gas")
        l_soft, l_bol = xray_luminosities(inside)
        out["lx_soft500"][i], out["lx_bol500"][i] = l_soft.sum(), l_bol.sum()
        out["lx_proxy"][i] = bremsstrahlung_proxy(m, rh, t).sum()
        out["m_gas500"][i] = m.sum()
        out["t_mw500"][i] = np.sum(m * t) / max(m.sum(), 1e-300)
        ring = r > 0.15 * r5
        w = rh[ring] * m[ring] * t[ring] ** -0.75
        out["t_sl"][i] = np.sum(w * t[ring]) / w.sum() if w.size else np.nan
        if star_tree is not None:
            for key, radius in (("mstar_central", CENTRAL_APERTURE), ("mstar500", r5)):
                out[key][i] = stars.masses[star_tree.query_ball_point(centre, radius)].sum()
            idx = np.asarray(star_tree.query_ball_point(centre, r5), dtype=np.intp)
            own = idx[uid[idx] == cat.halo_id[i]]
            sat = galaxy[own] >= FIRST_SATELLITE
            out["mstar_bcg_icl500"][i] = stars.masses[own[~sat]].sum()
            out["mstar_sat500"][i] = stars.masses[own[sat]].sum()
            idx = np.asarray(star_tree.query_ball_point(centre, cat.r200[i]), dtype=np.intp)
            own = idx[(uid[idx] == cat.halo_id[i]) & (galaxy[idx] >= FIRST_SATELLITE)]
            per_galaxy = np.bincount(galaxy[own], weights=stars.masses[own])
            out["richness200"][i] = np.count_nonzero(per_galaxy >= RICHNESS_MIN_MASS * (1 - 1e-9))
    out.update(halo_id=cat.halo_id, m200=cat.m200, r200=cat.r200, m500=m500, r500=r500,
               f_gas500=out["m_gas500"] / m500, t_sl_kev=out["t_sl"] / KEV_K)
    return out


def image_luminosities(snapshot: str | os.PathLike, centres, r500, redshift: float = 0.05,
                       los: str = "z", npix: int = 240, scheme: str = "ngp") -> np.ndarray:
    """Soft-band L_X within the projected R500, measured from rendered ``Fxs`` images.

    Each halo is rendered noise-free (ideal instrument) at ``redshift`` along
    ``los`` with ±50 Mpc of line-of-sight structure, in a field 2.4 R500
    across; the flux of the pixels whose centres lie inside R500/d_A is summed
    and converted back with 4π d_L².

    Parameters
    ----------
    snapshot : path-like
        Snapshot file.
    centres : (n, 3) array_like
        Halo centres [comoving Mpc].
    r500 : (n,) array_like
        R500 [physical Mpc].
    redshift, los, npix, scheme
        Placement redshift, line of sight, pixels per side, deposition.

    Returns
    -------
    ndarray (n,)
        L_X(0.5–2 keV) [erg/s] inside the projected R500.
    """
    from astropy import units as u

    from ..cellindex import CellIndex
    from ..observables import particle_signals
    from ..render import render_maps

    snap = read_snapshot(snapshot, particle_types=["gas"])
    cosmo = default_cosmology()
    d_a = float(cosmo.angular_diameter_distance(redshift).to(u.Mpc).value)
    four_pi_dl2 = float(4.0 * np.pi * cosmo.luminosity_distance(redshift).to(u.cm).value ** 2)
    signals = particle_signals(snap, ["Fxs"])
    indexes = {"gas": CellIndex(snap.particles["gas"].positions, snap.boxsize)}
    grid = (np.arange(npix) + 0.5) / npix - 0.5
    rr = np.hypot(*np.meshgrid(grid, grid))
    out = np.zeros(len(r500))
    for i, (centre, r5) in enumerate(zip(np.asarray(centres, dtype=float), r500)):
        fov = float(np.degrees(2.4 * r5 / d_a) * 60.0)
        image = render_maps(snap, centre, channels=["Fxs"], redshift=redshift, los=los,
                            npix=npix, fov_arcmin=fov, scheme=scheme, indexes=indexes,
                            signals=signals)["Fxs"]
        out[i] = image[rr <= 1.0 / 2.4].sum() * four_pi_dl2
    return out


def fit_power_law(x, y) -> tuple[float, float, float]:
    """Least-squares fit log10 y = a + b log10 x; returns (a, b, rms scatter in dex)."""
    lx, ly = np.log10(x), np.log10(y)
    b, a = np.polyfit(lx, ly, 1)
    return float(a), float(b), float(np.sqrt(np.mean((ly - a - b * lx) ** 2)))
