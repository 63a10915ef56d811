"""Per-particle signals and per-pixel normalisation (Yan et al. 2020, eqs 1–5).

Per particle (independent of where the cluster is placed):

* ``Star``: stellar mass M* [M☉].
* ``Fxs``, ``Fxb``: soft (0.5–2 keV) and bolometric X-ray luminosity [erg s⁻¹],
  the snapshot's own ``luminosity_soft``/``luminosity_bol`` when present,
  otherwise :mod:`cmcore.emission` applied to hot (T > :data:`T_MIN_XRAY`),
  non-star-forming gas.
* ``Ypar``: Υ = σ_T k_BT/(m_e c²) · m/(μ_e m_H) [Mpc²] (eq. 1), all gas.

Per pixel, after projection (the sums are linear, so the normalisation is a
constant factor per image):

* ``Star`` = Σ M*/S in M☉ kpc⁻² (eq. 2);
* ``Fxs``, ``Fxb`` = Σ L/(4π d_L²) in erg s⁻¹ cm⁻² (eq. 4);
* ``Ypar`` = Σ Υ/S, dimensionless (eq. 5);

with S the physical area of one pixel at the angular-diameter distance d_A(z)
and d_L(z) the luminosity distance of the placement redshift z.  A snapshot
at scale factor a keeps its own physical size: a comoving length ℓ spans the
angle a·ℓ/d_A(z).  The z = 0 cluster is therefore *placed* at z, not evolved
(Yan et al. 2020 §2.2).  Distances come from :mod:`astropy.cosmology`, WMAP9
by default as in the paper.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from astropy import constants as const
from astropy import units as u
from astropy.cosmology import FLRW, WMAP9

from . import emission
from .errors import InputError
from .snapshot import ParticleData, Snapshot

#: The paper's four observables, in its order.
CHANNELS = ("Star", "Fxs", "Fxb", "Ypar")

#: Units of each channel's pixels (astropy/FITS-style strings).
CHANNEL_UNITS = {
    "Star": "solMass kpc-2",
    "Fxs": "erg s-1 cm-2",
    "Fxb": "erg s-1 cm-2",
    "Ypar": "",
}

#: Particles per block of :func:`particle_signals` (bounds its temporaries).
_SIGNAL_BLOCK = 1 << 19

#: Units of the per-particle signals of :func:`particle_signals`.
SIGNAL_UNITS = {"Star": "solMass", "Fxs": "erg s-1", "Fxb": "erg s-1", "Ypar": "Mpc2"}

#: Precomputed per-particle luminosity field of each X-ray channel.
LUMINOSITY_FIELDS = {"Fxs": "luminosity_soft", "Fxb": "luminosity_bol"}

#: Particle type each channel is made from.
CHANNEL_PARTICLES = {"Star": "stars", "Fxs": "gas", "Fxb": "gas", "Ypar": "gas"}

#: Lowest temperature [K] of X-ray emitting gas for the emission model.
#: At 10⁶ K (kT = 0.086 keV) the 0.5–2 keV band holds ~10⁻³ of the
#: bremsstrahlung and ~10 % of the line power, the Born Gaunt factor is valid
#: (kT ≫ Z² Ry for H, He) and the gas is well above the 10⁴–10⁵ K phases that
#: simulations without resolved multiphase structure misrepresent; colder gas
#: radiates in the UV, not in X-rays.
T_MIN_XRAY = 1.0e6

#: Metallicity assumed when a snapshot has none (0.3 Z☉, the typical ICM
#: abundance, e.g. Mantz et al. 2017), with a warning.
DEFAULT_METALLICITY = 0.3 * emission.Z_SOLAR

_MSUN_MPC3_TO_G_CM3 = float((1 * u.Msun / u.Mpc**3).to(u.g / u.cm**3).value)
_MSUN_G = float(const.M_sun.cgs.value)
_CM2_TO_MPC2 = float((1 * u.cm**2).to(u.Mpc**2).value)
_SIGMA_T_CM2 = float(const.sigma_T.cgs.value)
_ME_C2_ERG = float((const.m_e * const.c**2).cgs.value)
_K_B_CGS = float(const.k_B.cgs.value)


def check_channels(channels: Iterable[str]) -> tuple[str, ...]:
    """Return ``channels`` as a tuple after checking each is one of :data:`CHANNELS`."""
    channels = tuple(channels)
    if not channels:
        raise InputError("no channel requested")
    for ch in channels:
        if ch not in CHANNELS:
            raise InputError(f"unknown channel {ch!r}; expected one of {', '.join(CHANNELS)}")
    if len(set(channels)) != len(channels):
        raise InputError(f"channel listed twice in {list(channels)}")
    return channels


def stellar_mass(stars: ParticleData) -> np.ndarray:
    """Stellar mass of each star particle [M☉]."""
    return np.asarray(stars.masses, dtype=np.float64)


def electron_abundance(gas: ParticleData, x_hydrogen: float = emission.X_HYDROGEN) -> np.ndarray:
    """n_e/n_H per gas particle: the snapshot's ``electron_abundance``, else fully ionised H + He."""
    if "electron_abundance" in gas:
        return np.asarray(gas["electron_abundance"], dtype=np.float64)
    return np.full(len(gas), emission.electron_abundance_ionised(x_hydrogen))


def mu_e(gas: ParticleData, x_hydrogen: float = emission.X_HYDROGEN) -> np.ndarray:
    """Mean mass per free electron in units of m_H, μ_e = ρ/(n_e m_H) = 1/(X n_e/n_H).

    Fully ionised H + He with X = 0.76 gives μ_e = 2/(1 + X) ≈ 1.136.
    """
    return 1.0 / (x_hydrogen * electron_abundance(gas, x_hydrogen))


def upsilon(gas: ParticleData, x_hydrogen: float = emission.X_HYDROGEN) -> np.ndarray:
    """Υ = σ_T k_BT/(m_e c²) · m/(μ_e m_H) per gas particle [Mpc²] (eq. 1).

    Υ/S summed over a pixel of physical area S is the Compton y of that pixel
    (eq. 5).  All gas contributes (McCarthy et al. 2018).
    """
    t = np.asarray(gas["temperature"], dtype=np.float64)
    n_electrons = gas.masses * _MSUN_G / (mu_e(gas, x_hydrogen) * emission.M_H_CGS)
    return _SIGMA_T_CM2 * (_K_B_CGS * t / _ME_C2_ERG) * n_electrons * _CM2_TO_MPC2


def _metallicity(gas: ParticleData) -> np.ndarray:
    if "metallicity" not in gas:
        warnings.warn(
            f"gas has no metallicity; the X-ray line emission assumes Z = "
            f"{DEFAULT_METALLICITY:.4g} (0.3 solar) for every particle",
            stacklevel=3,
        )
        return np.full(len(gas), DEFAULT_METALLICITY)
    z = np.asarray(gas["metallicity"], dtype=np.float64)
    # GIZMO/FIRE store (N, 2 + species); column 0 is the total metal mass fraction.
    return z[:, 0] if z.ndim == 2 else z


def xray_luminosities(
    gas: ParticleData,
    *,
    t_min: float = T_MIN_XRAY,
    x_hydrogen: float = emission.X_HYDROGEN,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft (0.5–2 keV) and bolometric X-ray luminosity per gas particle [erg s⁻¹].

    Parameters
    ----------
    gas : ParticleData
        Gas particles.  Precomputed ``luminosity_soft`` / ``luminosity_bol``
        fields are returned as they are (each independently) when present.
        Otherwise the model needs ``density`` (physical M☉ Mpc⁻³) and
        ``temperature`` [K]; ``metallicity`` (else 0.3 Z☉, with a warning),
        ``electron_abundance`` (else fully ionised) and ``star_formation_rate``
        are used when present.
    t_min : float
        Only gas hotter than this [K] emits (:data:`T_MIN_XRAY`).
    x_hydrogen : float
        Hydrogen mass fraction.

    Returns
    -------
    (l_soft, l_bol) : tuple of ndarray
        L = ε V, ε from :func:`cmcore.emission.emissivities` with n_H = Xρ/m_H
        and V = m/ρ; zero for gas at T ≤ ``t_min`` and for star-forming gas
        (``star_formation_rate`` > 0: its temperature is that of an imposed
        equation of state, not of X-ray emitting plasma).
    """
    have_soft = "luminosity_soft" in gas
    have_bol = "luminosity_bol" in gas
    if have_soft and have_bol:
        return (np.asarray(gas["luminosity_soft"], dtype=np.float64),
                np.asarray(gas["luminosity_bol"], dtype=np.float64))
    t = np.asarray(gas["temperature"], dtype=np.float64)
    rho = np.asarray(gas["density"], dtype=np.float64) * _MSUN_MPC3_TO_G_CM3
    emits = t > t_min
    if "star_formation_rate" in gas:
        emits &= ~(np.asarray(gas["star_formation_rate"]) > 0)
    l_soft = np.zeros(len(gas))
    l_bol = np.zeros(len(gas))
    if emits.any():
        rho_e = rho[emits]
        n_h = x_hydrogen * rho_e / emission.M_H_CGS
        eps_soft, eps_bol = emission.emissivities(
            n_h,
            t[emits],
            _metallicity(gas)[emits],
            electron_abundance(gas, x_hydrogen)[emits],
            x_hydrogen,
        )
        volume = gas.masses[emits] * _MSUN_G / rho_e
        l_soft[emits] = eps_soft * volume
        l_bol[emits] = eps_bol * volume
    if have_soft:
        l_soft = np.asarray(gas["luminosity_soft"], dtype=np.float64)
    if have_bol:
        l_bol = np.asarray(gas["luminosity_bol"], dtype=np.float64)
    return l_soft, l_bol


def required_fields(channel: str) -> tuple[str, tuple[str, ...]]:
    """Particle type and fields a channel needs from a snapshot (beyond positions, masses).

    The X-ray channels list the fields of the emission model; precomputed
    luminosities replace them (see :func:`xray_luminosities`).
    """
    check_channels([channel])
    if channel == "Star":
        return "stars", ()
    if channel == "Ypar":
        return "gas", ("temperature",)
    return "gas", ("density", "temperature")


def snapshot_request(
    channels: Sequence[str], *, scheme: str = "ngp"
) -> tuple[list[str], list[str]]:
    """Particle types and fields to read for ``channels`` (for :func:`cmcore.readers.read_snapshot`).

    Returns ``(particle_types, fields)``: every field the channels use, required
    or optional, to be read where the file has them (``optional_fields``);
    :func:`check_available` then names what a channel lacks.
    """
    channels = check_channels(channels)
    ptypes = sorted({CHANNEL_PARTICLES[ch] for ch in channels})
    fields: set[str] = set()
    for ch in channels:
        fields.update(required_fields(ch)[1])
        if ch in ("Fxs", "Fxb"):
            fields.update(("metallicity", "electron_abundance", "star_formation_rate"))
        if ch == "Ypar":
            fields.add("electron_abundance")
    if scheme == "sph":
        fields.add("smoothing_length")
    return ptypes, sorted(fields)


def check_available(snapshot: Snapshot, channels: Sequence[str]) -> None:
    """Raise :class:`InputError`, naming what is missing, if a channel cannot be made."""
    for ch in check_channels(channels):
        ptype, fields = required_fields(ch)
        if ptype not in snapshot.particles:
            have = ", ".join(sorted(snapshot.particles)) or "none"
            raise InputError(
                f"channel {ch} needs {ptype} particles, but snapshot "
                f"{snapshot.path or '<memory>'} has none (particle types: {have})"
            )
        pdata = snapshot.particles[ptype]
        if LUMINOSITY_FIELDS.get(ch) in pdata:
            continue
        missing = [f for f in fields if f not in pdata]
        if missing:
            raise InputError(
                f"channel {ch} needs {ptype} field(s) {', '.join(missing)}, absent from "
                f"snapshot {snapshot.path or '<memory>'}"
            )


def check_request(contents: Mapping[str, Iterable[str]], channels: Sequence[str], *,
                  scheme: str = "ngp", where: str = "the snapshot") -> None:
    """Refuse, before any particle is read, channels a snapshot cannot give.

    Parameters
    ----------
    contents : mapping
        ``{particle type: field names}`` as from
        :func:`cmcore.readers.snapshot_contents`.
    channels : sequence of str
        Channels to make.
    scheme : str
        Deposition scheme; ``"sph"`` needs smoothing lengths of every particle
        type the channels use.
    where : str
        The snapshot's name, for the message.

    Raises
    ------
    InputError
        Naming the first channel that cannot be made and why.
    """
    for ch in check_channels(channels):
        ptype, fields = required_fields(ch)
        if ptype not in contents:
            have = ", ".join(sorted(contents)) or "none"
            raise InputError(f"channel {ch} needs {ptype} particles, but {where} has none "
                             f"(particle types: {have})")
        have = set(contents[ptype])
        if LUMINOSITY_FIELDS.get(ch) not in have:
            missing = [f for f in fields if f not in have]
            if missing:
                raise InputError(f"channel {ch} needs {ptype} field(s) {', '.join(missing)}, "
                                 f"absent from {where}")
        if scheme == "sph" and "smoothing_length" not in have:
            raise InputError(f"scheme 'sph' needs smoothing lengths of the {ptype} particles of "
                             f"channel {ch}, absent from {where}; use --scheme ngp or cic, or "
                             f"leave {ch} out of the channels")


def _gas_signals(gas: ParticleData, gas_ch: tuple[str, ...], t_min: float, x_hydrogen: float) -> np.ndarray:
    """(N, k) signals of the gas channels ``gas_ch`` for the particles of ``gas``."""
    cols = {}
    xray = [ch for ch in gas_ch if ch in LUMINOSITY_FIELDS]
    if xray and all(LUMINOSITY_FIELDS[ch] in gas for ch in xray):
        cols.update({ch: np.asarray(gas[LUMINOSITY_FIELDS[ch]], dtype=np.float64) for ch in xray})
    elif xray:
        cols["Fxs"], cols["Fxb"] = xray_luminosities(gas, t_min=t_min, x_hydrogen=x_hydrogen)
    if "Ypar" in gas_ch:
        cols["Ypar"] = upsilon(gas, x_hydrogen)
    return np.column_stack([cols[ch] for ch in gas_ch])


def _rows(pdata: ParticleData, start: int, stop: int) -> ParticleData:
    """A view of particles ``start:stop`` (no copies of the arrays)."""
    return ParticleData(pdata.positions[start:stop], pdata.masses[start:stop],
                        {k: v[start:stop] for k, v in pdata.fields.items()}, name=pdata.name)


def particle_signals(
    snapshot: Snapshot,
    channels: Sequence[str],
    *,
    t_min: float = T_MIN_XRAY,
    x_hydrogen: float = emission.X_HYDROGEN,
    workers: int = 1,
) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    """Per-particle signals of ``channels``, grouped by particle type.

    They do not depend on the placement redshift, so a dataset builder computes
    them once per snapshot and passes them to :func:`cmcore.render.render_maps`.

    Parameters
    ----------
    snapshot : Snapshot
        Particles.
    channels : sequence of str
        Among :data:`CHANNELS`.
    t_min, x_hydrogen : float
        As :func:`xray_luminosities`.
    workers : int
        Threads evaluating the gas signals.  They are computed in blocks of
        :data:`_SIGNAL_BLOCK` particles, so that temporaries stay small however large
        the snapshot; NumPy and SciPy's special functions release the GIL, so blocks
        run concurrently.  The result does not depend on ``workers``.

    Returns
    -------
    dict
        ``{ptype: (weights, names)}``: ``weights`` (N, k) float64, column i
        the signal of channel ``names[i]`` in :data:`SIGNAL_UNITS`.
    """
    channels = check_channels(channels)
    check_available(snapshot, channels)
    if int(workers) < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    out: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    if "Star" in channels:
        out["stars"] = (stellar_mass(snapshot.stars)[:, None], ("Star",))
    gas_ch = tuple(ch for ch in channels if CHANNEL_PARTICLES[ch] == "gas")
    if gas_ch:
        gas = snapshot.gas
        n = len(gas)
        weights = np.empty((n, len(gas_ch)))

        def fill(start: int) -> None:
            stop = min(start + _SIGNAL_BLOCK, n)
            weights[start:stop] = _gas_signals(_rows(gas, start, stop), gas_ch, t_min, x_hydrogen)

        starts = range(0, n, _SIGNAL_BLOCK)
        if workers == 1 or n <= _SIGNAL_BLOCK:
            for start in starts:
                fill(start)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=int(workers)) as pool:
                list(pool.map(fill, starts))
        out["gas"] = (weights, gas_ch)
    return out


def default_cosmology() -> FLRW:
    """WMAP9 (Hinshaw et al. 2013), the cosmology of BAHAMAS and of the paper."""
    return WMAP9


def pixel_size_mpc(redshift: float, pixel_arcsec: float, cosmology: FLRW | None = None) -> float:
    """Physical side of one pixel at the angular-diameter distance d_A(z) [Mpc] (eq. 3)."""
    if not (np.isfinite(redshift) and redshift > 0):
        raise InputError(f"placement redshift must be positive, got {redshift}")
    cosmo = cosmology or default_cosmology()
    d_a = cosmo.angular_diameter_distance(redshift).to_value(u.Mpc)
    return float(d_a * (pixel_arcsec * u.arcsec).to_value(u.rad))


def pixel_area_kpc2(redshift: float, pixel_arcsec: float, cosmology: FLRW | None = None) -> float:
    """Physical area S of one pixel [kpc²]."""
    return (1e3 * pixel_size_mpc(redshift, pixel_arcsec, cosmology)) ** 2


def flux_factor(redshift: float, cosmology: FLRW | None = None) -> float:
    """1/(4π d_L²) [cm⁻²] that turns a luminosity into a flux (eq. 4)."""
    if not (np.isfinite(redshift) and redshift > 0):
        raise InputError(f"placement redshift must be positive, got {redshift}")
    cosmo = cosmology or default_cosmology()
    d_l = cosmo.luminosity_distance(redshift).to_value(u.cm)
    return float(1.0 / (4.0 * np.pi * d_l**2))


def pixel_normalisation(
    channel: str, redshift: float, pixel_arcsec: float, cosmology: FLRW | None = None
) -> float:
    """Factor turning a pixel sum of the particle signal into the channel's unit.

    ``Star``: 1/S [kpc⁻²]; ``Fxs``/``Fxb``: 1/(4π d_L²) [cm⁻²]; ``Ypar``: 1/S [Mpc⁻²].
    """
    check_channels([channel])
    if channel == "Star":
        return 1.0 / pixel_area_kpc2(redshift, pixel_arcsec, cosmology)
    if channel == "Ypar":
        return 1.0 / pixel_size_mpc(redshift, pixel_arcsec, cosmology) ** 2
    return flux_factor(redshift, cosmology)
