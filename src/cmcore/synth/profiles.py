"""Particle realisation of one halo: dark matter, subhaloes, hot gas and galaxies.

Geometry
--------
Each halo is triaxial: a spherical profile ρ(r) is mapped onto concentric
ellipsoids of axes (1, q, s)/(q s)^(1/3) (volume-preserving, so the mass inside
the ellipsoid of "radius" r_e is the spherical M(<r_e) and the density at a
particle is exactly ρ(r_e)), then rotated by a uniformly random rotation.  Gas
is rounder than dark matter (Lau et al. 2011): its axis ratios are the square
roots of the dark-matter ones, with the same orientation.

Sampling
--------
Radii are drawn by inverting the cumulative mass M(<r) tabulated on a
logarithmic grid (:func:`sample_radii`); directions are isotropic.  Particle
numbers are the mass over the particle mass, rounded stochastically, so the
expected mass is exact.

Smoothing lengths
-----------------
Gas particles carry the SPH kernel support radius H that holds
N_ngb = 48 neighbours at the particle's own analytic density:
(4π/3) H³ ρ = N_ngb m (the density of the realised profile, not of the
Poisson-sampled particles, so H is free of sampling noise; overlapping haloes
do not add to each other's densities).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Neighbours within the kernel support radius of a gas particle.
N_NGB = 48
#: Points of the radial tables used for sampling and integrals.
_GRID_POINTS = 512


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random rotation matrix (3, 3) from a random unit quaternion (Shoemake 1992)."""
    w, x, y, z = (v := rng.normal(size=4)) / np.linalg.norm(v)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def ellipsoid_axes(q: float, s: float) -> np.ndarray:
    """Semi-axis scale factors (1, q, s)/(q s)^(1/3) of a volume-preserving ellipsoid."""
    return np.array([1.0, q, s]) / (q * s) ** (1.0 / 3.0)


def isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` isotropic unit vectors, shape (n, 3)."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def place(rng: np.random.Generator, radii, axes, rotation) -> np.ndarray:
    """Offsets (n, 3) of points at ellipsoidal radii ``radii`` with isotropic angles."""
    return (isotropic(rng, radii.size) * radii[:, None] * axes) @ rotation.T


def radial_grid(r_max: float, r_min: float) -> np.ndarray:
    """Logarithmic radial grid from ``r_min`` to ``r_max``."""
    return np.geomspace(r_min, r_max, _GRID_POINTS)


def cumulative_mass(r: np.ndarray, density: np.ndarray, inner_slope: float = 0.0) -> np.ndarray:
    """M(<r) = ∫ 4π r² ρ dr on a logarithmic grid (trapezoid in ln r).

    The mass inside the first grid point is 4π r₀³ ρ(r₀)/(3 − γ) for an inner
    power law ρ ∝ r^−γ.
    """
    integrand = 4.0 * np.pi * r**3 * density
    inner = integrand[0] / (3.0 - inner_slope)
    steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(np.log(r))
    return inner + np.concatenate([[0.0], np.cumsum(steps)])


def sample_radii(rng: np.random.Generator, n: int, r: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """``n`` radii distributed as the tabulated cumulative mass ``cum`` on grid ``r``.

    Below the first grid point the profile is taken as uniform in r³.
    """
    u = rng.uniform(0.0, cum[-1], size=n)
    out = np.exp(np.interp(u, cum, np.log(r)))
    inner = u < cum[0]
    out[inner] = r[0] * (u[inner] / cum[0]) ** (1.0 / 3.0)
    return out


def stochastic_count(rng: np.random.Generator, mass: float, particle_mass: float) -> int:
    """mass/particle_mass rounded up or down at random (expected value exact)."""
    x = max(mass, 0.0) / particle_mass
    return int(np.floor(x + rng.uniform()))


def nfw_radii(rng: np.random.Generator, n: int, r200: float, c: float, r_max: float) -> np.ndarray:
    """``n`` radii of an NFW profile (Navarro, Frenk & White 1997) truncated at ``r_max``."""
    from .relations import nfw_mu

    r = radial_grid(r_max, 1e-4 * r200)
    return sample_radii(rng, n, r, nfw_mu(c * r / r200))


def hernquist_radii(rng: np.random.Generator, n: int, r_half: float,
                    truncation: float = 10.0) -> np.ndarray:
    """``n`` radii of a Hernquist (1990) sphere of 3D half-mass radius ``r_half``.

    M(<r) ∝ (r/(r+a))², a = r_half/(1+√2), truncated at ``truncation`` · a.
    """
    a = r_half / (1.0 + np.sqrt(2.0))
    u = rng.uniform(0.0, (truncation / (truncation + 1.0)) ** 2, size=n)
    su = np.sqrt(u)
    return a * su / (1.0 - su)


@dataclass
class GasModel:
    """The hot-gas atmosphere of one halo (all radii are ellipsoidal radii r_e).

    Parameters
    ----------
    r500 : float
        [Mpc]
    amplitude : float
        ρ = amplitude · shape(r/R500) [physical M☉/Mpc³].
    shape : dict
        Parameters of :func:`cmcore.synth.relations.gas_density_shape`.
    t_scale : float
        T(r) = t_scale · t(r/R500) [K], with t the universal profile.
    cool_core : bool
    """

    r500: float
    amplitude: float
    shape: dict
    t_scale: float
    cool_core: bool

    def density(self, r):
        """Gas density [physical M☉/Mpc³] at ellipsoidal radius ``r`` [Mpc]."""
        from .relations import gas_density_shape

        return self.amplitude * gas_density_shape(np.asarray(r) / self.r500, **self.shape)

    def temperature(self, r):
        """Temperature [K] at ellipsoidal radius ``r`` [Mpc]."""
        from .relations import temperature_profile

        return self.t_scale * temperature_profile(np.asarray(r) / self.r500, self.cool_core)


def gas_model(m500: float, r500: float, f_gas: float, shape: dict, t_x: float, cool_core: bool):
    """The :class:`GasModel` with f_gas · M500 of gas inside the R500 ellipsoid.

    The temperature profile is scaled so that its spectroscopic-like mean
    (weights ρ² T^−3/4 per volume, Mazzotta et al. 2004) over 0.15–1 R500 is
    ``t_x``, the X-ray temperature of the M–T relation.
    """
    model = GasModel(r500, 1.0, shape, 1.0, cool_core)
    r = radial_grid(r500, 1e-4 * r500)
    rho, t = model.density(r), model.temperature(r)
    model.amplitude = f_gas * m500 / cumulative_mass(r, rho, inner_slope=shape["alpha"] / 2)[-1]
    ring = r >= 0.15 * r500
    weight = rho[ring] ** 2 * t[ring] ** -0.75 * r[ring] ** 3
    model.t_scale = t_x * np.trapezoid(weight, np.log(r[ring])) / np.trapezoid(
        weight * t[ring], np.log(r[ring]))
    return model


def gas_integrals(model: GasModel, r_out: float) -> dict:
    """Gas mass, ∫ρT dV and ∫ρ²T^½ dV inside the ellipsoid of radius ``r_out``.

    Returns
    -------
    dict
        ``mass`` [M☉], ``mass_t`` [M☉ K], ``l_proxy`` [M☉² Mpc⁻³ K^½].
    """
    r = radial_grid(r_out, 1e-4 * model.r500)
    rho, t = model.density(r), model.temperature(r)
    slope = model.shape["alpha"] / 2
    return {
        "mass": float(cumulative_mass(r, rho, slope)[-1]),
        "mass_t": float(cumulative_mass(r, rho * t, slope)[-1]),
        "l_proxy": float(cumulative_mass(r, rho**2 * np.sqrt(t), 2 * slope)[-1]),
    }


def realise_gas(rng: np.random.Generator, model: GasModel, r_max: float, particle_mass: float,
                axes: np.ndarray, rotation: np.ndarray):
    """Gas particles of ``model`` out to ellipsoidal radius ``r_max``.

    Returns
    -------
    offsets : ndarray (n, 3)
        Positions relative to the halo centre [Mpc].
    fields : dict
        ``density`` (physical M☉/Mpc³), ``temperature`` (K), ``smoothing_length``
        (Mpc), ``radius`` (ellipsoidal radius r_e, Mpc).
    """
    r = radial_grid(r_max, 1e-4 * model.r500)
    cum = cumulative_mass(r, model.density(r), model.shape["alpha"] / 2)
    n = stochastic_count(rng, cum[-1], particle_mass)
    radii = sample_radii(rng, n, r, cum)
    rho = model.density(radii)
    h = (3.0 * N_NGB * particle_mass / (4.0 * np.pi * rho)) ** (1.0 / 3.0)
    fields = {"density": rho, "temperature": model.temperature(radii),
              "smoothing_length": h, "radius": radii}
    return place(rng, radii, axes, rotation), fields
