"""Relations measured back from the particles of a snapshot, as an observer would.

For every halo of a catalogue (centre, R200 from the particles) this gives,
from the particles alone (periodic, spherical apertures):

* M500, R500 by spherical overdensity with Δ = 500, exact to the particle
  (the rule of :mod:`cmcore.halos`);
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

Bounded memory
--------------
Neither function loads the snapshot.  Each particle type is read
``chunk_rows`` rows at a time (``read_snapshot(..., rows=...)``); a periodic
cell index over the chunk (:class:`cmcore.cellindex.CellIndex`) picks the
particles within each halo's sphere of radius max(R200, 50 kpc) (R500 < R200:
the mean density within R200 is below 500 ρ_c), or within each image's
column, and only those are kept: for the sphere, the float64 distance, the
mass and the few per-particle values the sums need.  Memory is then the
particles of the spheres (16–40 bytes each by type; ~10⁸ particles within
R200 of the 2000 targets of the ``paper`` preset) plus one chunk, whatever the
size of the box (the peak of ``cmc synth-plots`` on the ``paper`` universe is
recorded in ``bench/results/synth-relations-paper.json``).  The spherical overdensity is solved on the gathered
distances exactly as :func:`cmcore.halos.spherical_overdensity` solves it
(same particles, same order, same rule); a halo whose mean density is still
above 500 ρ_c at the gathered radius (a catalogue R200 not from these
particles) is gathered again with twice the radius.  The results do not
depend on ``chunk_rows`` beyond the rounding of sums.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import h5py
import numpy as np

from ..cellindex import CellIndex
from ..errors import InputError
from ..halos import _so_from_sorted, _wrap, read_halos
from ..observables import default_cosmology, xray_luminosities
from ..progress import progress_bar
from ..readers import particle_counts, read_snapshot
from ..snapshot import PARTICLE_TYPES, ParticleData, Snapshot
from .relations import KEV_K, bremsstrahlung_proxy, compton_y_per_particle
from .stars import BCG_APERTURE, FIRST_SATELLITE, GALAXY_SHIFT, RICHNESS_MIN_MASS

#: Aperture of the central galaxy's stellar mass [Mpc].
CENTRAL_APERTURE = BCG_APERTURE

#: Particles of one type read (and indexed) at a time.
CHUNK_ROWS = 1 << 22

#: Overdensity of the measured masses, with respect to the critical density.
DELTA = 500.0

_OUTPUTS = ("y500", "lx_proxy", "m_gas500", "t_sl", "t_mw500", "lx_soft500", "lx_bol500",
            "mstar_central", "mstar500", "mstar_bcg_icl500", "mstar_sat500", "richness200")


def _header(snapshot) -> tuple[Snapshot, dict[str, int]]:
    """The snapshot's header (no particles read) and its particle counts."""
    counts = {t: n for t, n in particle_counts(snapshot).items() if n}
    types = [t for t in PARTICLE_TYPES if t in counts]
    if "gas" not in types:
        raise InputError(f"{snapshot} has no gas particles: nothing to measure")
    return read_snapshot(snapshot, particle_types=[types[0]], rows=(0, 0)), counts


def _chunks(snapshot, ptype: str, n: int, chunk_rows: int, progress: bool,
            desc: str) -> Iterator[tuple[int, int, ParticleData]]:
    """(start, stop, particles) of ``ptype``, ``chunk_rows`` rows at a time."""
    if int(chunk_rows) < 1:
        raise InputError(f"chunk_rows must be positive, got {chunk_rows}")
    starts = range(0, n, int(chunk_rows))
    for start in progress_bar(starts, desc=desc, unit="chunk", disable=not progress):
        stop = min(start + int(chunk_rows), n)
        yield start, stop, read_snapshot(snapshot, particle_types=[ptype], rows=(start, stop)).particles[ptype]


def _distances(positions: np.ndarray, centre: np.ndarray, boxsize: float) -> np.ndarray:
    """Periodic float64 distances from ``centre`` (the arithmetic of :mod:`cmcore.halos`)."""
    d = positions.astype(np.float64) - centre
    d -= boxsize * np.round(d / boxsize)
    return np.sqrt(np.einsum("ij,ij->i", d, d))


def _gather(snapshot, counts: dict[str, int], boxsize: float, centres: np.ndarray, radii: np.ndarray,
            chunk_rows: int, progress: bool) -> list[dict[str, dict[str, np.ndarray]]]:
    """Per halo and per type, what the sums need of the particles within ``radii`` of ``centres``.

    Gas: ``r``, ``m``, ``density``, ``temperature``, ``l_soft``, ``l_bol``;
    dark matter: ``r``, ``m``; stars: ``r``, ``m``, ``uid``, ``galaxy``
    (decoded from the synthetic particle IDs).  Particles of each type are in
    snapshot order.
    """
    from .universe import decode_ids

    kept: list[dict[str, dict[str, list]]] = [{} for _ in range(len(centres))]
    for ptype in (t for t in PARTICLE_TYPES if t in counts):
        ids = h5py.File(snapshot, "r") if ptype == "stars" else None
        try:
            for start, stop, p in _chunks(snapshot, ptype, counts[ptype], chunk_rows, progress,
                                          f"R500 spheres: {ptype}"):
                values = {"m": np.broadcast_to(np.asarray(p.masses, dtype=np.float64), (len(p),))}
                if ptype == "gas":
                    values["density"] = np.asarray(p["density"])
                    values["temperature"] = np.asarray(p["temperature"])
                    values["l_soft"], values["l_bol"] = xray_luminosities(p)
                elif ptype == "stars":
                    uid, _, index = decode_ids(ids["PartType4/ParticleIDs"][start:stop])
                    values["uid"], values["galaxy"] = uid, index >> GALAXY_SHIFT
                index = CellIndex(np.ascontiguousarray(p.positions), boxsize)
                for j, (centre, radius) in enumerate(zip(centres, radii)):
                    sel = index.select_sphere(centre, radius * (1.0 + 1e-5))
                    if sel.size == 0:
                        continue
                    r = _distances(index.positions[sel], centre, boxsize)
                    inside = r <= radius
                    sel = sel[inside]
                    if sel.size == 0:
                        continue
                    store = kept[j].setdefault(ptype, {"r": []})
                    store["r"].append(r[inside])
                    for name, v in values.items():
                        store.setdefault(name, []).append(v[sel])
        finally:
            if ids is not None:
                ids.close()
    for j, halo in enumerate(kept):  # in place: the pieces of one halo at a time are held twice
        kept[j] = {t: {k: np.concatenate(v) for k, v in per_type.items()} for t, per_type in halo.items()}
    return kept


def measure(snapshot: str | os.PathLike, halos: str | os.PathLike, *, chunk_rows: int = CHUNK_ROWS,
            progress: bool = False) -> dict:
    """Measure the relations of every halo of ``halos`` from ``snapshot``, in bounded memory.

    Parameters
    ----------
    snapshot : path-like
        Synthetic snapshot (``cmc synth``): the star particle IDs carry the halo
        and galaxy of each star.
    halos : path-like
        Halo catalogue (centres, R200).
    chunk_rows : int
        Particles read at a time (see the module docstring).
    progress : bool
        Progress bars over the passes.

    Returns
    -------
    dict of ndarray
        ``halo_id``, ``m200``, ``r200`` (from the catalogue), ``m500``, ``r500``,
        ``y500`` [Mpc²], ``lx_proxy`` [M☉² Mpc⁻³ K^½], ``m_gas500``,
        ``f_gas500``, ``t_sl`` [K], ``t_sl_kev``, ``t_mw500`` [K],
        ``lx_soft500``, ``lx_bol500`` [erg/s], ``mstar_central``, ``mstar500``,
        ``mstar_bcg_icl500``, ``mstar_sat500`` [M☉], ``richness200``.

    Raises
    ------
    InputError
        No gas, bad ``chunk_rows``, or a centre about which the mean density
        stays above 500 ρ_c out to half the box.
    """
    header, counts = _header(snapshot)
    cat = read_halos(halos)
    box = header.boxsize
    rho_c = float(header.cosmology.critical_density(header.redshift).to("Msun / Mpc3").value)
    target = DELTA * rho_c
    centres = _wrap(cat.centre, box)
    out = {k: np.zeros(len(cat)) for k in _OUTPUTS}
    m500, r500 = np.zeros(len(cat)), np.zeros(len(cat))
    radii = np.maximum(cat.r200, CENTRAL_APERTURE)
    pending = np.arange(len(cat))
    while pending.size:
        gathered = _gather(snapshot, counts, box, centres[pending], radii[pending], chunk_rows, progress)
        again = []
        for j, i in enumerate(pending):
            halo = gathered[j]
            gathered[j] = None  # free each halo's particles once measured
            r = np.concatenate([halo[t]["r"] for t in PARTICLE_TYPES if t in halo] or [np.zeros(0)])
            m = np.concatenate([halo[t]["m"] for t in PARTICLE_TYPES if t in halo] or [np.zeros(0)])
            order = np.argsort(r, kind="stable")
            sol = _so_from_sorted(r[order], m[order], target, radii[i])
            if sol is None:
                if radii[i] >= 0.5 * box:
                    raise InputError(f"mean density about centre {cat.centre[i].tolist()} stays above "
                                     f"{DELTA:g} rho_crit out to half the box: no R{DELTA:g}")
                radii[i] = min(2.0 * radii[i], 0.5 * box)
                again.append(i)
                continue
            m500[i], r500[i], _ = sol
            _sums(out, i, halo, r500[i], cat.r200[i], cat.halo_id[i])
        pending = np.asarray(again, dtype=np.intp)
    out.update(halo_id=cat.halo_id, m200=cat.m200, r200=cat.r200, m500=m500, r500=r500,
               f_gas500=out["m_gas500"] / m500, t_sl_kev=out["t_sl"] / KEV_K)
    return out


def _sums(out: dict, i: int, halo: dict, r5: float, r200: float, halo_id: int) -> None:
    """Fill row ``i`` of ``out`` from one halo's gathered particles."""
    gas = halo.get("gas")
    if gas is not None:
        inside = gas["r"] <= r5
        m, t = gas["m"][inside], gas["temperature"][inside].astype(float)
        rh, r = gas["density"][inside].astype(float), gas["r"][inside]
        out["y500"][i] = compton_y_per_particle(m, t).sum()
        out["lx_soft500"][i], out["lx_bol500"][i] = gas["l_soft"][inside].sum(), gas["l_bol"][inside].sum()
        out["lx_proxy"][i] = bremsstrahlung_proxy(m, rh, t).sum()
        out["m_gas500"][i] = m.sum()
        out["t_mw500"][i] = np.sum(m * t) / max(m.sum(), 1e-300)
        ring = r > 0.15 * r5
        w = rh[ring] * m[ring] * t[ring] ** -0.75
        out["t_sl"][i] = np.sum(w * t[ring]) / w.sum() if w.size else np.nan
    else:
        out["t_sl"][i] = np.nan
    st = halo.get("stars")
    if st is None:
        return
    r, m = st["r"], st["m"]
    out["mstar_central"][i] = m[r <= CENTRAL_APERTURE].sum()
    out["mstar500"][i] = m[r <= r5].sum()
    own = (r <= r5) & (st["uid"] == halo_id)
    sat = st["galaxy"] >= FIRST_SATELLITE
    out["mstar_bcg_icl500"][i] = m[own & ~sat].sum()
    out["mstar_sat500"][i] = m[own & sat].sum()
    own = (r <= r200) & (st["uid"] == halo_id) & sat
    per_galaxy = np.bincount(st["galaxy"][own], weights=m[own])
    out["richness200"][i] = np.count_nonzero(per_galaxy >= RICHNESS_MIN_MASS * (1 - 1e-9))


def image_luminosities(snapshot: str | os.PathLike, centres, r500, redshift: float = 0.05,
                       los: str = "z", npix: int = 240, scheme: str = "ngp", *,
                       chunk_rows: int = CHUNK_ROWS, progress: bool = False) -> np.ndarray:
    """Soft-band L_X within the projected R500, measured from rendered ``Fxs`` images.

    Each halo is rendered noise-free (ideal instrument) at ``redshift`` along
    ``los`` with ±50 Mpc of line-of-sight structure, in a field 2.4 R500
    across; the flux of the pixels whose centres lie inside R500/d_A is summed
    and converted back with 4π d_L².  The gas is read in chunks and only each
    image's column is kept (module docstring).

    Parameters
    ----------
    snapshot : path-like
        Snapshot file.
    centres : (n, 3) array_like
        Halo centres [comoving Mpc].
    r500 : (n,) array_like
        R500 [physical Mpc].
    redshift, los, npix, scheme
        Placement redshift, line of sight (``"x"``, ``"y"`` or ``"z"``), pixels
        per side, deposition.
    chunk_rows : int
        Gas particles read at a time.
    progress : bool
        Progress bars.

    Returns
    -------
    ndarray (n,)
        L_X(0.5–2 keV) [erg/s] inside the projected R500.
    """
    from astropy import units as u

    from ..observables import particle_signals
    from ..render import render_maps, slab_depth

    axes = {"x": 0, "y": 1, "z": 2}
    if los not in axes:
        raise InputError(f"image_luminosities takes an axis line of sight (x, y or z), got {los!r}")
    header, counts = _header(snapshot)
    cosmo = default_cosmology()
    d_a = float(cosmo.angular_diameter_distance(redshift).to(u.Mpc).value)
    four_pi_dl2 = float(4.0 * np.pi * cosmo.luminosity_distance(redshift).to(u.cm).value ** 2)
    centres = np.atleast_2d(np.asarray(centres, dtype=float))
    r500 = np.asarray(r500, dtype=float)
    fovs = np.degrees(2.4 * r500 / d_a) * 60.0
    # the column each image sees: 2.4 R500 (comoving, at the snapshot's a) across, ±depth along los,
    # padded by two pixels (cic) and, for sph, the largest smoothing length of each chunk
    widths = 2.4 * r500 / header.scale_factor
    half = np.repeat((0.5 + 2.0 / npix) * widths[:, None], 3, axis=1)
    half[:, axes[los]] = slab_depth(50.0, header.boxsize) + 2.0 * widths / npix
    names = ["positions", "masses", "signal", *(["smoothing_length"] if scheme == "sph" else [])]
    kept: list[dict[str, list]] = [{k: [] for k in names} for _ in range(len(r500))]
    signal_names = None
    for _, _, p in _chunks(snapshot, "gas", counts["gas"], chunk_rows, progress, "Fxs columns: gas"):
        weights, signal_names = particle_signals(replace(header, particles={"gas": p}), ["Fxs"])["gas"]
        pad = float(np.max(p["smoothing_length"])) if scheme == "sph" and len(p) else 0.0
        index = CellIndex(np.ascontiguousarray(p.positions), header.boxsize)
        values = {"positions": index.positions, "masses": np.broadcast_to(p.masses, (len(p),)),
                  "signal": weights, **({"smoothing_length": p["smoothing_length"]} if pad else {})}
        for j, (centre, h) in enumerate(zip(centres, half)):
            sel = index.select_box(centre, h + pad)
            if sel.size:
                for name in names:
                    kept[j][name].append(values[name][sel])
    grid = (np.arange(npix) + 0.5) / npix - 0.5
    rr = np.hypot(*np.meshgrid(grid, grid))
    out = np.zeros(len(r500))
    for i, (centre, fov) in enumerate(zip(centres, fovs)):
        column = {k: (np.concatenate(v) if v else None) for k, v in kept[i].items()}
        kept[i] = None
        if column["positions"] is None:
            continue
        fields = {"smoothing_length": column["smoothing_length"]} if scheme == "sph" else {}
        snap = replace(header, particles={"gas": ParticleData(column["positions"], column["masses"], fields,
                                                              name="gas")})
        image = render_maps(snap, centre, channels=["Fxs"], redshift=redshift, los=los, npix=npix,
                            fov_arcmin=float(fov), scheme=scheme,
                            signals={"gas": (column["signal"], signal_names)})["Fxs"]
        out[i] = image[rr <= 1.0 / 2.4].sum() * four_pi_dl2
    return out


def fit_power_law(x, y) -> tuple[float, float, float]:
    """Least-squares fit log10 y = a + b log10 x; returns (a, b, rms scatter in dex)."""
    lx, ly = np.log10(x), np.log10(y)
    b, a = np.polyfit(lx, ly, 1)
    return float(a), float(b), float(np.sqrt(np.mean((ly - a - b * lx) ** 2)))
