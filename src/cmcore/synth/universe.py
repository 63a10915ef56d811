"""The synthetic universe: draw haloes, realise their particles, write the outputs.

:func:`generate` writes into ``out``:

``snapshot.hdf5``
    EAGLE-style z = 0 snapshot (:mod:`cmcore.synth.writer`).
``halos.h5``
    cmc-halos catalogue of the target clusters, with M200 and R200 measured
    from *all* particles of the snapshot within R200 of each centre
    (:func:`cmcore.halos.spherical_overdensity`, periodic), never copied
    from the generator's inputs.
``synth.json``
    Every parameter and relation, the seed, the code version, the drawn
    properties of every target and the field-halo mass histogram with its
    expectation.  Written last: its presence marks a complete run.

Determinism: every random quantity comes from a :class:`numpy.random.Generator`
seeded with ``SeedSequence(seed, spawn_key=key)`` where ``key`` names the
catalogue draw (``(0,)`` target masses and positions, ``(1,)`` field masses,
``(1, 1)`` field positions, ``(4, i)`` excess haloes of target i) or the halo
(``(2, i)`` target i, ``(3, j)`` field halo j, ``(5, i, k)`` excess halo k of
target i), never the order of processing:
the same seed gives identical arrays, other seeds independent universes.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from .._version import __version__
from ..errors import InputError
from ..fileio import atomic_write, remove_stale_temporaries
from ..cosmology import cosmology_to_json
from ..halos import HaloCatalogue, spherical_overdensity, write_halos
from . import relations as rel
from . import stars
from .cosmo import COSMOLOGY, h, rho_crit
from .haloes import (EXCESS_R_MAX, LINES_OF_SIGHT, ExcessModel, cumulative_abundance,
                     halo_extent, in_columns, minimum_image, running_integral,
                     sample_mass_function, target_masses)
from .presets import SynthConfig, get_preset
from .profiles import (N_NGB, cumulative_mass, ellipsoid_axes, gas_integrals, gas_model,
                       hernquist_radii, isotropic, nfw_radii, place, radial_grid,
                       random_rotation, realise_gas, sample_radii, stochastic_count)
from .writer import SnapshotWriter

#: Particle-ID layout: uid << 32 | type << 30 | index; a star particle's index is
#: galaxy << stars.GALAXY_SHIFT | particle (galaxy 0 BCG, 1 ICL, >= 2 satellites).
_ID_TYPE = {"gas": 0, "dm": 1, "stars": 2}
_ID_INDEX_BITS, _ID_UID_SHIFT = 30, 32
#: Fewest dark-matter particles within R500 for the gas to be drawn at the realised M500.
REALISED_M500_MIN_PARTICLES = 1000


def decode_ids(ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Halo uid, particle type code and index of synthetic particle IDs.

    For star particles, ``index >> stars.GALAXY_SHIFT`` is the galaxy number
    within the halo (0 the BCG, 1 the ICL, >= 2 satellites).
    """
    ids = np.asarray(ids, dtype=np.int64)
    return (ids >> _ID_UID_SHIFT, (ids >> _ID_INDEX_BITS) & 3, ids & ((1 << _ID_INDEX_BITS) - 1))


def _rng(seed: int, key: tuple) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass
class Halo:
    """One halo to realise: where, how massive, which random stream."""

    uid: int
    m200: float
    centre: np.ndarray
    key: tuple
    kind: str  # "target", "field" or "excess"


@dataclass
class SynthResult:
    """What :func:`generate` wrote and drew.

    Attributes
    ----------
    out : Path
        Output folder; ``snapshot``, ``halos``, ``meta`` are the three files.
    targets : dict of ndarray
        Drawn properties of the target clusters (inputs, not measurements).
    field_masses : ndarray
        M200c of the Poisson (mass-function) field haloes drawn in the box.
    field_volume : float
        Volume they were drawn in [Mpc³].
    n_particles : dict
        Particles written per type.
    seconds : float
        Wall-clock time.
    """

    out: Path
    targets: dict
    field_masses: np.ndarray
    field_volume: float
    n_particles: dict
    seconds: float
    snapshot: Path = field(init=False)
    halos: Path = field(init=False)
    meta: Path = field(init=False)

    def __post_init__(self) -> None:
        self.snapshot = self.out / "snapshot.hdf5"
        self.halos = self.out / "halos.h5"
        self.meta = self.out / "synth.json"


def _draw_subhaloes(rng: np.random.Generator, m200: float, r_max: float, axes: np.ndarray,
                    rotation: np.ndarray, min_mass: float):
    """Masses [M☉], offsets (n, 3) and ellipsoidal radii [Mpc] of a host's subhaloes.

    Poisson number and masses from :func:`cmcore.synth.relations.subhalo_mass_function`
    above ``min_mass``; radii from the Einasto number density out to ``r_max``,
    on the host's ellipsoids.
    """
    psi_min = min_mass / m200
    if psi_min >= 1.0:
        return np.zeros(0), np.zeros((0, 3)), np.zeros(0)
    psi = np.geomspace(psi_min, 1.0, 200)
    cum = running_integral(rel.subhalo_mass_function(psi), np.log(psi))
    n_sub = rng.poisson(cum[-1])
    masses = m200 * np.exp(np.interp(rng.uniform(0, cum[-1], n_sub), cum, np.log(psi)))
    r200 = float(rel.r_delta(m200))
    r = radial_grid(r_max, 1e-3 * r200)
    radii = sample_radii(rng, n_sub, r, cumulative_mass(r, rel.subhalo_number_density(r / r200)))
    return masses, place(rng, radii, axes, rotation), radii


def _subhalo_offsets(rng: np.random.Generator, m_sub: float, distance: float, m_host: float,
                     m_dm: float) -> np.ndarray:
    """DM particle offsets of one subhalo about its centre.

    An NFW sphere (Diemer & Joyce 2019 concentration with scatter) holding
    ``m_sub``, truncated at min(R200(m_sub), Jacobi radius d (m_sub / 3 M_host(<d))^⅓).
    """
    r200_sub = float(rel.r_delta(m_sub))
    c_sub = float(rel.concentration_mean(m_sub)) * 10 ** (rel.CONCENTRATION_SCATTER_DEX * rng.normal())
    r_tidal = min(r200_sub, distance * (m_sub / (3.0 * m_host)) ** (1.0 / 3.0))
    n = stochastic_count(rng, m_sub, m_dm)
    return isotropic(rng, n) * nfw_radii(rng, n, r200_sub, c_sub, r_tidal)[:, None]


def _galaxy(rng: np.random.Generator, m_gal: float, centre_offset, config: SynthConfig,
            number: int, r_half: float | None = None) -> dict:
    """Star particles of galaxy ``number`` of a halo: a Hernquist sphere of Shen et al.
    2003 size (floored at ``config.galaxy_size_floor``) above
    ``config.galaxy_split_mass``, one particle below."""
    if r_half is None:
        r_half = max(float(stars.galaxy_half_mass_radius(m_gal)) * 10 ** (
            rel.SIZE_SCATTER_DEX * rng.normal()), config.galaxy_size_floor)
    n = max(1, int(round(m_gal / config.m_star))) if m_gal >= config.galaxy_split_mass else 1
    radii = hernquist_radii(rng, n, r_half) if n > 1 else np.zeros(1)
    return {"positions": centre_offset + isotropic(rng, n) * radii[:, None],
            "masses": np.full(n, m_gal / n), "index": _star_index(number, n)}


def _star_index(number: int, n: int) -> np.ndarray:
    if n >= 1 << stars.GALAXY_SHIFT or number >= 1 << (_ID_INDEX_BITS - stars.GALAXY_SHIFT):
        raise InputError(f"galaxy {number} with {n} star particles does not fit the ID layout; "
                         "raise m_star")
    return (number << stars.GALAXY_SHIFT) + np.arange(n, dtype=np.int64)


def _assemble(parts: dict, halo: Halo, boxsize: float, m_dm: float) -> dict:
    """Concatenate a halo's particle chunks per type, place and wrap them, add IDs."""
    particles = {}
    for ptype, chunks in parts.items():
        merged = {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]} if chunks else {}
        n = len(merged.get("positions", ()))
        if n == 0:
            continue
        if n >= 2**_ID_INDEX_BITS:
            raise InputError(f"halo {halo.uid} has {n} {ptype} particles: too many for the ID layout")
        merged["positions"] = np.mod(merged["positions"] + halo.centre, boxsize)
        merged["positions"][merged["positions"] >= boxsize] = 0.0
        index = merged.pop("index", None)
        merged["ids"] = ((halo.uid << _ID_UID_SHIFT) | (_ID_TYPE[ptype] << _ID_INDEX_BITS)) + (
            np.arange(n, dtype=np.int64) if index is None else index)
        if ptype == "dm":
            merged["masses"] = np.full(n, m_dm)
        particles[ptype] = merged
    return particles


@dataclass
class _GasDraw:
    """One halo's draws of its gas relations, applied at whatever M500 it is given.

    ``xc_factor`` and ``beta_shift`` perturb the density shape; ``z_fgas`` and
    ``z_t`` are the standard-normal draws of the f_gas and T scatter.
    """

    cool_core: bool
    xc_factor: float
    beta_shift: float
    z_fgas: float
    z_t: float

    def f_gas(self, m500: float) -> float:
        return min(float(rel.hot_gas_fraction_500(m500)) * 10 ** (rel.FGAS_SCATTER_DEX * self.z_fgas),
                   0.9 * COSMOLOGY.Ob0 / COSMOLOGY.Om0)

    def t_x(self, m500: float) -> float:
        return float(rel.temperature_x(m500)) * 10 ** (rel.T_SCATTER_DEX * self.z_t)

    def model(self, m500: float, r500: float):
        shape = dict(rel.GAS_SHAPE[self.cool_core])
        shape["x_c"] = float(rel.gas_core_radius(shape["x_c"] * self.xc_factor, m500))
        shape["beta"] += self.beta_shift
        return gas_model(m500, r500, self.f_gas(m500), shape, self.t_x(m500), self.cool_core)


def _realised_m500(parts: dict, m_dm: float, content, galaxies: list, gas_draw: _GasDraw,
                   m500: float, r500: float, c200: float, r200: float, iterations: int = 6):
    """M500, R500 and gas model of a halo as its own matter realises them.

    The gas relations are functions of M500 as an observer measures it, in a
    sphere; the triaxial NFW with its subhaloes taken out holds 7–10 % less
    within its spherical R500 than the NFW M500.  So M500 is solved on the
    halo's own dark-matter particles, its stars (BCG + ICL profiles, satellite
    positions) and the gas model drawn at the current M500, iterated to a
    fixed point (the gas is ~10 % of the mass: converged to < 10⁻⁴ in a few
    steps).  A halo with fewer than :data:`REALISED_M500_MIN_PARTICLES` dark-matter
    particles within its NFW R500 (whose sphere would measure Poisson noise), or
    whose mean density does not cross 500 ρ_c between 0.2 and 2 R500, keeps the
    NFW values.
    """
    dm_r = np.sort(np.concatenate([np.sqrt(np.einsum("ij,ij->i", p["positions"], p["positions"]))
                                   for p in parts["dm"]]))
    if np.searchsorted(dm_r, r500) < REALISED_M500_MIN_PARTICLES:
        return m500, r500, gas_draw.model(m500, r500)
    sat_r = np.sort([np.sqrt(np.dot(p, p)) for _, p in galaxies]) if galaxies else np.zeros(0)
    sat_m = np.cumsum([g[0] for g in sorted(galaxies, key=lambda g: np.dot(g[1], g[1]))])
    r = np.geomspace(0.2 * r500, 2.0 * r500, 400)
    rest = m_dm * np.searchsorted(dm_r, r) + content.central_within(r, r500, c200, r200)
    if sat_r.size:
        k = np.searchsorted(sat_r, r)
        rest += np.where(k > 0, sat_m[np.maximum(k - 1, 0)], 0.0)
    mean_500 = 500.0 * rho_crit(0.0) * 4.0 / 3.0 * np.pi * r**3
    m500_nfw, r500_nfw = m500, r500
    gas = gas_draw.model(m500, r500)
    for _ in range(iterations):
        grid = radial_grid(r[-1], 1e-4 * gas.r500)
        cum = cumulative_mass(grid, gas.density(grid), gas.shape["alpha"] / 2)
        excess = rest + np.interp(r, grid, cum) - mean_500
        inside = np.nonzero(excess < 0)[0]
        if inside.size == 0 or inside[0] == 0:  # too few particles to see R500: keep the NFW
            return m500_nfw, r500_nfw, gas_draw.model(m500_nfw, r500_nfw)
        j = inside[0]
        r_new = float(np.interp(0.0, [excess[j], excess[j - 1]], [r[j], r[j - 1]]))
        m500 = 500.0 * rho_crit(0.0) * 4.0 / 3.0 * np.pi * r_new**3
        r500 = r_new
        gas = gas_draw.model(m500, r500)
    return m500, r500, gas


def realise_halo(halo: Halo, seed: int, config: SynthConfig, boxsize: float):
    """Draw the properties of one halo and realise its particles.

    Returns
    -------
    props : dict
        The drawn properties (c200, axis ratios, gas and stellar parameters,
        the intended Y500 and L_X proxy within the R500 ellipsoid, …).
    particles : dict
        ``{"dm"|"gas"|"stars": {field: ndarray}}`` with absolute, wrapped
        ``positions`` [Mpc], ``ids`` and the type's other fields.
    """
    rng = _rng(seed, halo.key)
    m200 = halo.m200
    r200 = float(rel.r_delta(m200))
    r_max = config.r_trunc * r200
    c = float(rel.concentration_mean(m200)) * 10 ** (rel.CONCENTRATION_SCATTER_DEX * rng.normal())
    s = float(np.clip(rng.normal(rel.shape_s_mean(m200), rel.SHAPE_S_SIGMA), 0.3, 0.98))
    q = float(rng.uniform(s, 1.0))
    rotation = random_rotation(rng)
    axes_dm = ellipsoid_axes(q, s)
    axes_gas = ellipsoid_axes(np.sqrt(q), np.sqrt(s))
    x500 = float(rel.nfw_r500_over_r200(c)[0])
    r500 = x500 * r200
    m500 = m200 * float(rel.nfw_mu(c * x500) / rel.nfw_mu(c))

    cool_core = bool(rng.uniform() < rel.COOL_CORE_FRACTION)
    gas_draw = _GasDraw(cool_core, 10 ** (rel.GAS_XC_SCATTER_DEX * rng.normal()),
                        rel.GAS_BETA_SIGMA * rng.normal(), rng.normal(), rng.normal())
    gas = gas_draw.model(m500, r500)  # provisional: sets the dark-matter budget below
    in200 = gas_integrals(gas, r200)

    content = stars.draw_stellar_content(rng, m200, m500, r200, r500, r_max, config.min_galaxy_mass,
                                         config.galaxy_size_floor)
    sub_m, sub_pos, sub_r = _draw_subhaloes(rng, m200, r_max, axes_dm, rotation,
                                            config.subhalo_min_mass)
    # satellites: CSMF galaxies (clusters), Moster galaxies of subhaloes (field), mixed in between
    galaxies = [(m, p) for m, p in zip(content.sat_masses, isotropic(rng, content.sat_masses.size)
                                       * content.sat_radii[:, None])]
    for m_sub, pos, d in zip(sub_m, sub_pos, sub_r):
        m_sat = float(rel.stellar_mass_central(m_sub / rel.SUBHALO_STRIPPED_FRACTION)) * 10 ** (
            rel.SHMR_SCATTER_DEX * rng.normal())
        if rng.uniform() >= content.weight:
            galaxies.append((m_sat, pos))
    galaxies = [g for g in galaxies if g[0] >= config.min_galaxy_mass]
    sat_in200 = sum(m for m, p in galaxies if np.dot(p, p) < r200**2)
    m_dm200 = max(m200 - in200["mass"] - content.m_bcg - content.m_icl - sat_in200
                  - float(sub_m[sub_r < r200].sum()), 0.3 * m200)
    n_dm = stochastic_count(rng, m_dm200 * float(rel.nfw_mu(c * config.r_trunc) / rel.nfw_mu(c)),
                            config.m_dm)
    parts: dict[str, list] = {"dm": [], "gas": [], "stars": []}
    parts["dm"].append({"positions": place(rng, nfw_radii(rng, n_dm, r200, c, r_max), axes_dm,
                                           rotation)})
    for m_sub, pos, d in zip(sub_m, sub_pos, sub_r):
        m_host = m200 * float(rel.nfw_mu(c * d / r200) / rel.nfw_mu(c))
        parts["dm"].append({"positions": pos + _subhalo_offsets(rng, m_sub, d, m_host, config.m_dm)})

    m500_nfw, r500_nfw = m500, r500
    m500, r500, gas = _realised_m500(parts, config.m_dm, content, galaxies, gas_draw, m500, r500, c,
                                     r200)
    in500 = gas_integrals(gas, r500)
    offsets, gas_fields = realise_gas(rng, gas, r_max, config.m_gas, axes_gas, rotation)
    x = gas_fields.pop("radius") / r500
    gas_fields["metallicity"] = rel.metallicity_profile(x, cool_core)
    gas_fields["electron_abundance"] = np.full(x.size, rel.ELECTRON_ABUNDANCE)
    gas_fields["masses"] = np.full(x.size, config.m_gas)
    parts["gas"].append({"positions": offsets, **gas_fields})
    if content.m_bcg >= config.min_galaxy_mass:
        parts["stars"].append(_galaxy(rng, content.m_bcg, np.zeros(3), config, stars.BCG_GALAXY,
                                      content.r_half_bcg))
    n_icl = stochastic_count(rng, content.m_icl, config.m_star)
    if n_icl:
        parts["stars"].append({"positions": place(rng, nfw_radii(rng, n_icl, r200, c, r500_nfw), axes_dm,
                                                  rotation),
                               "masses": np.full(n_icl, config.m_star),
                               "index": _star_index(stars.ICL_GALAXY, n_icl)})
    for k, (m_gal, pos) in enumerate(galaxies):
        parts["stars"].append(_galaxy(rng, m_gal, pos, config, stars.FIRST_SATELLITE + k))
    particles = _assemble(parts, halo, boxsize, config.m_dm)

    y_per_mass_t = float(rel.compton_y_per_particle(1.0, 1.0))
    props = dict(
        m200=m200, r200=r200, c200=c, s=s, q=q, m500=m500, r500=r500, m500_nfw=m500_nfw,
        r500_nfw=r500_nfw, cool_core=cool_core, f_gas500=gas_draw.f_gas(m500),
        t_x=gas_draw.t_x(m500), x_c=gas.shape["x_c"], beta=gas.shape["beta"],
        mstar_central=content.central_within(stars.BCG_APERTURE, r500_nfw, c, r200),
        mstar_bcg=content.m_bcg, mstar_icl=content.m_icl, r_half_bcg=content.r_half_bcg,
        mstar_sat500_intended=content.m_sat500_intended, stellar_weight=content.weight,
        n_sub=int(sub_m.size), n_satellites=len(galaxies),
        mstar_satellites=float(sum(g[0] for g in galaxies)),
        y500_intended=y_per_mass_t * in500["mass_t"], lx_proxy_intended=in500["l_proxy"],
        m_gas500_intended=in500["mass"],
    )
    return props, particles


def _catalogue(config: SynthConfig, seed: int, boxsize: float):
    """Targets and field haloes (positions and masses) of the universe."""
    rng = _rng(seed, (0,))
    m_t = target_masses(rng, config.clusters_per_bin, config.log_m_min, config.log_m_max,
                        config.n_bins)
    pos_t = rng.uniform(0.0, boxsize, size=(m_t.size, 3))
    volume = boxsize**3
    m_f = sample_mass_function(_rng(seed, (1,)), volume, config.field_min_mass,
                               config.field_max_mass)
    pos_f = _rng(seed, (1, 1)).uniform(0.0, boxsize, size=(m_f.size, 3))
    targets = [Halo(i, float(m), pos_t[i], (2, i), "target") for i, m in enumerate(m_t)]
    field_haloes = [Halo(m_t.size + j, float(m), pos_f[j], (3, j), "field")
                    for j, m in enumerate(m_f)]
    excess_model = ExcessModel(config.field_min_mass, config.field_max_mass)
    bias_t = rel.halo_bias(m_t) if m_t.size else np.zeros(0)
    uid = m_t.size + m_f.size
    for i, halo in enumerate(targets):
        r_in = float(halo_extent(halo.m200, config.r_trunc))
        masses, offsets = excess_model.sample(_rng(seed, (4, i)), float(bias_t[i]), r_in)
        for k, (m, d) in enumerate(zip(masses, offsets)):
            field_haloes.append(Halo(uid, float(m), np.mod(halo.centre + d, boxsize), (5, i, k),
                                     "excess"))
            uid += 1
    if config.field_region == "columns" and field_haloes:
        keep = in_columns(np.array([f.centre for f in field_haloes]),
                          halo_extent(np.array([f.m200 for f in field_haloes]), config.r_trunc),
                          pos_t, boxsize, config.column_half_length, config.column_radius)
        field_haloes = [f for f, k in zip(field_haloes, keep) if k]
    return targets, field_haloes, m_f, volume


def _measure_so(target: Halo, own: dict, neighbours: list, seed, config, boxsize, rho_c):
    """M200, R200 and particle count of ``target`` from all particles near it."""
    r_crop = config.r_trunc * float(rel.r_delta(target.m200))
    pos, mass = [], []
    for particles in [own] + [realise_halo(n, seed, config, boxsize)[1] for n in neighbours]:
        for arrays in particles.values():
            d = minimum_image(arrays["positions"] - target.centre, boxsize)
            near = np.einsum("ij,ij->i", d, d) < r_crop**2
            pos.append(arrays["positions"][near])
            mass.append(arrays["masses"][near])
    m200, r200, n = spherical_overdensity(pos, mass, target.centre, boxsize, rho_c,
                                          return_counts=True, start_radius=0.5 * r_crop)
    if not 0.0 < r200[0] < 0.9 * r_crop:
        raise RuntimeError(f"target {target.uid}: R200 = {r200[0]:.3f} Mpc outside the "
                           f"search sphere of {r_crop:.3f} Mpc")
    return float(m200[0]), float(r200[0]), int(n[0])


class _Plan:
    """Every halo of the universe and what realising one needs: shared by the worker processes."""

    def __init__(self, everyone: list, seed: int, config: SynthConfig, boxsize: float, rho_c: float):
        self.everyone, self.seed, self.config, self.boxsize, self.rho_c = everyone, seed, config, boxsize, rho_c
        self.centres = np.array([x.centre for x in everyone]).reshape(-1, 3)
        self.extents = halo_extent(np.array([x.m200 for x in everyone]), config.r_trunc)
        self.tree = cKDTree(np.mod(self.centres, boxsize), boxsize=boxsize) if everyone else None

    def realise(self, i: int):
        """Properties, particles and (targets only) measured M200, R200, N of halo ``i``."""
        halo = self.everyone[i]
        p, particles = realise_halo(halo, self.seed, self.config, self.boxsize)
        if halo.kind != "target":
            return None, particles, None
        ext = self.extents
        reach = ext[i] + ext.max()
        near = [self.everyone[j] for j in self.tree.query_ball_point(halo.centre, reach)
                if j != i and np.linalg.norm(minimum_image(self.centres[j] - halo.centre, self.boxsize))
                < ext[i] + ext[j]]
        return p, particles, _measure_so(halo, particles, near, self.seed, self.config, self.boxsize,
                                         self.rho_c)

    def chunks(self, n: int) -> list[range]:
        """Consecutive haloes in about ``n`` pieces of equal particle budget (M200 plus a halo's overhead)."""
        cost = np.cumsum(np.array([x.m200 for x in self.everyone]) + 1e12)
        if not cost.size:
            return []
        cuts = np.unique(np.searchsorted(cost, cost[-1] * np.arange(1, n) / n, side="right"))
        bounds = [0, *[int(c) for c in cuts if 0 < c < cost.size], cost.size]
        return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


_PLAN: _Plan | None = None


def _init_worker(plan: _Plan) -> None:
    global _PLAN
    _PLAN = plan


def _realise_chunk(chunk: range) -> list:
    return [_PLAN.realise(i) for i in chunk]


def _realised(plan: _Plan, workers: int):
    """``plan.realise(i)`` for every halo, in catalogue order, on ``workers`` processes.

    The haloes go out in chunks of about 1/(500 × workers) of the universe's mass, at
    most ``16 × workers`` in flight: enough that a slow chunk (a massive target, whose
    measurement realises its neighbours again) does not leave the other workers idle
    while the results are taken in catalogue order, few enough that memory stays
    bounded whatever the size of the box.
    """
    if workers == 1:
        for i in range(len(plan.everyone)):
            yield plan.realise(i)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    chunks = iter(plan.chunks(500 * workers))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(plan,)) as pool:
        pending = deque()
        try:
            for chunk in chunks:
                pending.append(pool.submit(_realise_chunk, chunk))
                if len(pending) >= 16 * workers:
                    break
            while pending:
                done = pending.popleft().result()
                nxt = next(chunks, None)
                if nxt is not None:
                    pending.append(pool.submit(_realise_chunk, nxt))
                yield from done
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def _atomic_json(path: Path, data: dict) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def generate(preset: str | SynthConfig = "tiny", seed: int = 0, out: str | os.PathLike = "synth",
             *, workers: int = 1, **overrides) -> SynthResult:
    """Generate a synthetic universe and write its three files into ``out``.

    Parameters
    ----------
    preset : str or SynthConfig
        ``"tiny"``, ``"small"``, ``"paper"`` (:data:`cmcore.synth.presets.PRESETS`)
        or a full configuration.
    seed : int
        Master seed (non-negative).
    out : path-like
        Output folder (created if needed).
    workers : int
        Processes realising the haloes (1: in this process).  The files are
        identical for any number: every halo draws from its own random stream
        and is written in catalogue order.
    **overrides
        Fields of :class:`SynthConfig` replacing the preset's.

    Returns
    -------
    SynthResult

    Raises
    ------
    InputError
        Unknown preset or parameter, negative seed, ``workers`` < 1, a box
        smaller than four times the extent of the largest target, ``out`` not
        a folder.
    """
    from ..progress import progress_bar

    start = time.perf_counter()
    config = get_preset(preset, **overrides) if isinstance(preset, str) else preset
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    boxsize = config.box_size_h / h()
    largest = 4.0 * float(halo_extent(10**config.log_m_max, config.r_trunc))
    if boxsize < largest:
        raise InputError(f"box of {config.box_size_h:g} cMpc/h is too small for clusters of "
                         f"10^{config.log_m_max:g} Msun: it must exceed {largest * h():.1f} cMpc/h")
    rho_c = rho_crit(0.0)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("synth.json", "halos.h5"):  # the completion marker first, then a stale catalogue
        (out / stale).unlink(missing_ok=True)
    for name in ("snapshot.hdf5", "halos.h5", "synth.json"):  # temporaries of a run killed by SIGKILL
        remove_stale_temporaries(out / name)

    targets, field_haloes, m_field, volume = _catalogue(config, seed, boxsize)
    everyone = targets + field_haloes

    props, measured = [], []
    buffers: dict[str, list] = {"dm": [], "gas": [], "stars": []}
    buffered = 0
    with SnapshotWriter(out / "snapshot.hdf5", boxsize, COSMOLOGY, 0.0, config.m_dm) as writer:
        def flush():
            for ptype, chunks in buffers.items():
                if chunks:
                    writer.append(ptype, {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]})
                chunks.clear()

        bar = progress_bar(total=len(everyone), desc=f"synth {config.name}", unit="halo",
                           disable=not config.progress)
        plan = _Plan(everyone, seed, config, boxsize, rho_c)
        for p, particles, so in _realised(plan, int(workers)):
            if so is not None:
                measured.append(so)
                props.append(p)
            for ptype, arrays in particles.items():
                buffers[ptype].append(arrays)
                buffered += len(arrays["positions"])
            if buffered >= config.batch_particles:
                flush()
                buffered = 0
            bar.update()
        flush()
        bar.close()
        counts = dict(writer.counts)

    table = {k: np.array([p[k] for p in props]) for k in (props[0] if props else {})}
    table["halo_id"] = np.arange(len(targets), dtype=np.int64)
    table["centre"] = np.array([t.centre for t in targets]).reshape(-1, 3)
    table["m200_measured"] = np.array([m[0] for m in measured])
    table["r200_measured"] = np.array([m[1] for m in measured])
    write_halos(out / "halos.h5", HaloCatalogue(
        halo_id=table["halo_id"], centre=table["centre"], m200=table["m200_measured"],
        r200=table["r200_measured"], n_particles=np.array([m[2] for m in measured], dtype=np.int64),
        boxsize=boxsize, redshift=0.0, cosmology=COSMOLOGY,
        source=f"cmc synth preset={config.name} seed={seed}: target clusters, SO from all particles",
    ))

    edges = np.arange(np.log10(config.field_min_mass), np.log10(config.field_max_mass) + 0.1, 0.1)
    m_grid, cum = cumulative_abundance(config.field_min_mass, config.field_max_mass)
    expected = np.diff(np.interp(edges, np.log10(m_grid), cum)) * volume
    seconds = time.perf_counter() - start
    meta = {
        "code_version": __version__, "seed": seed, "config": config.as_dict(),
        "boxsize_mpc": boxsize, "redshift": 0.0, "cosmology": json.loads(cosmology_to_json(COSMOLOGY)),
        "sigma8": COSMOLOGY.meta["sigma8"], "n_s": COSMOLOGY.meta["n"],
        "rho_crit_msun_mpc3": rho_c, "relations": {**rel.relations_table(), "cluster_stars": stars.relations_table()},
        "realisation": {
            "geometry": "triaxial: spherical profile on volume-preserving ellipsoids, random rotation",
            "smoothing_length": f"(4 pi/3) H^3 rho = {N_NGB} m at the analytic density",
            "mass_budget": "within R200: gas profile + BCG + ICL + satellites + subhaloes + smooth NFW "
                           "= M200 drawn (the catalogue's M200 is measured from the particles)",
            "excess_r_max_mpc": EXCESS_R_MAX, "lines_of_sight": LINES_OF_SIGHT.tolist(),
            "particle_ids": "uid << 32 | type << 30 | index (type 0 gas, 1 dm, 2 stars); "
                            "uid: targets 0..N-1, then field haloes; star index: galaxy << "
                            f"{stars.GALAXY_SHIFT} | particle (0 BCG, 1 ICL, >= 2 satellites)",
        },
        "n_particles": counts, "n_targets": len(targets),
        "n_field_realised": {k: sum(f.kind == k for f in field_haloes) for k in ("field", "excess")},
        "field_mass_function": {"log10_m_edges": edges.tolist(),
                                "drawn": np.histogram(np.log10(m_field), edges)[0].tolist(),
                                "expected": expected.tolist(), "volume_mpc3": volume},
        "targets": {k: v.tolist() for k, v in table.items()},
        "seconds": seconds, "workers": int(workers),
    }
    _atomic_json(out / "synth.json", meta)
    return SynthResult(out, table, m_field, volume, counts, seconds)
