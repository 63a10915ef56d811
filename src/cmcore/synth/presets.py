"""Presets of the synthetic universe: box, sample, resolution and budget.

Particle masses (the argument, for the paper's 120 × 120 images of 10″ pixels
at z = 0.03–0.07, i.e. 6–14 kpc per pixel):

* ``paper`` and ``small`` use BAHAMAS's own resolution (McCarthy et al. 2017:
  m_DM = 5.5 × 10⁹ h⁻¹ M☉, m_gas = 1.09 × 10⁹ h⁻¹ M☉ → 7.9 × 10⁹ and 1.6 × 10⁹ M☉
  for h = 0.693), so the synthetic images are no noisier than the paper's.
* Gas images are SPH-smoothed with a support radius holding 48 neighbours.  At
  a cluster-core gas density of ~10⁻²⁶ g cm⁻³ (1.5 × 10¹⁴ M☉ Mpc⁻³) a 1.6 × 10⁹ M☉
  particle has H ≈ 50 kpc, several pixels: every pixel inside R200 receives
  tens of overlapping kernels, and H grows outwards as ρ^(-1/3).
* The ``Star`` channel is deposited per particle (NGP/CIC).  With the ``paper``
  instrument's noise (:data:`cmcore.instrument.PAPER_STAR_NOISE` M☉ kpc⁻² per
  pixel) a single 2.5 × 10⁸ M☉ star particle in a ~100 kpc² pixel is ~10 σ:
  galaxies, the ICL and the particle sampling of both are visible, as in
  BAHAMAS, whose star particles are heavier (~1.6 × 10⁹ M☉).
* Dark matter enters only the M200 labels: a 10¹³ M☉ halo holds ~1000 DM
  particles within R200, enough for M200 to ~3 % (Poisson).

``tiny`` is 4× coarser in every species (CI only; a 10¹³ M☉ group still has
~250 DM particles within R200).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import InputError

#: BAHAMAS particle masses for h = 0.6932 (WMAP9) [M☉].
_M_DM_BAHAMAS = 5.5e9 / 0.6932
_M_GAS_BAHAMAS = 1.09e9 / 0.6932
#: BAHAMAS gravitational softening, 4 kpc/h (McCarthy et al. 2017), in Mpc.
_SOFTENING_BAHAMAS = 4e-3 / 0.6932


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of one synthetic universe.

    Parameters
    ----------
    name : str
        Preset name (recorded in ``synth.json``).
    box_size_h : float
        Side of the periodic box [cMpc/h] (the paper's 400 cMpc/h for ``paper``).
    clusters_per_bin : int
        Target clusters per bin of M200c (``n_bins`` equal bins in log M).
    log_m_min, log_m_max : float
        Range of the target clusters' log10(M200c / M☉).
    n_bins : int
        Number of equal bins in log M over that range.
    field_min_mass : float
        Smallest field halo [M☉ M200c].  Default 10^11.5: its central galaxy
        (Moster et al. 2013) is ~10¹⁰ M☉, below the Star channel's noise per pixel,
        and its X-ray and SZ signals are negligible next to a 10¹³ M☉ group.
    field_max_mass : float
        Largest field halo [M☉].
    field_region : {"box", "columns"}
        ``"box"``: field haloes fill the whole box.  ``"columns"``: only the
        field haloes that reach one of the four lines of sight (x, y, z and
        (√2/2, −√2/2, 0)) of a target, within ±``column_half_length`` along it
        and ``column_radius`` across, are realised.
    column_half_length : float
        Half depth of a column [Mpc] (the paper's ±50 Mpc).
    column_radius : float
        Radius of a column [Mpc]; 3 Mpc covers a 20′ cutout's half-diagonal out
        to z ≈ 0.15 under any rotation about the line of sight.
    m_dm, m_gas, m_star : float
        Particle masses [M☉] (dark matter; gas; star particles of galaxies
        above ``galaxy_split_mass``).
    galaxy_split_mass : float
        Galaxies above this stellar mass [M☉] are groups of star particles;
        smaller ones are one star particle carrying their whole mass.
    min_galaxy_mass : float
        Galaxies below this stellar mass [M☉] are not realised.
    galaxy_size_floor : float
        Smallest 3D half-mass radius of a galaxy [Mpc].  Default: BAHAMAS's
        softening, 4 kpc/h (≈ 5.8 kpc), below which the paper's simulated
        galaxies cannot be smaller; 0 keeps the Shen et al. 2003 sizes.
    r_trunc : float
        Haloes are realised out to r_trunc · R200 (about the splashback radius).
    subhalo_min_mass : float
        Smallest subhalo realised [M☉].
    batch_particles : int
        Particles buffered per type before a write (bounds the memory).
    progress : bool
        Show a progress bar.
    """

    name: str
    box_size_h: float
    clusters_per_bin: int
    log_m_min: float = 13.0
    log_m_max: float = 15.0
    n_bins: int = 10
    field_min_mass: float = 10**11.5
    field_max_mass: float = 10**15.5
    field_region: str = "box"
    column_half_length: float = 50.0
    column_radius: float = 3.0
    m_dm: float = _M_DM_BAHAMAS
    m_gas: float = _M_GAS_BAHAMAS
    m_star: float = 2.5e8
    galaxy_split_mass: float = 1e10
    min_galaxy_mass: float = 1e8
    galaxy_size_floor: float = _SOFTENING_BAHAMAS
    r_trunc: float = 2.0
    subhalo_min_mass: float = 1e11
    batch_particles: int = 4_000_000
    progress: bool = False

    def __post_init__(self) -> None:
        if self.field_region not in ("box", "columns"):
            raise InputError(f"field_region must be 'box' or 'columns', got {self.field_region!r}")
        if self.box_size_h <= 0 or self.clusters_per_bin < 0 or self.n_bins < 1:
            raise InputError("box_size_h must be > 0, clusters_per_bin >= 0 and n_bins >= 1")
        if not self.log_m_min < self.log_m_max:
            raise InputError("log_m_min must be below log_m_max")
        if min(self.m_dm, self.m_gas, self.m_star) <= 0:
            raise InputError("particle masses must be positive")
        if not self.galaxy_size_floor >= 0:
            raise InputError(f"galaxy_size_floor must be >= 0, got {self.galaxy_size_floor}")

    def as_dict(self) -> dict:
        """All parameters as a JSON-ready dict."""
        return asdict(self)


#: The documented presets.  Budgets (2 cores): tiny ≤ 30 s and ≤ 1 GB (tests,
#: CI); small ≤ 5 min (the demo, 15 clusters per bin); paper ≤ 60 min and ≤ 16 GB.
PRESETS: dict[str, SynthConfig] = {
    "tiny": SynthConfig(
        name="tiny", box_size_h=40.0, clusters_per_bin=3,
        m_dm=4 * _M_DM_BAHAMAS, m_gas=4 * _M_GAS_BAHAMAS, m_star=1e9,
        subhalo_min_mass=3e11,
    ),
    "small": SynthConfig(name="small", box_size_h=100.0, clusters_per_bin=15, progress=True),
    "paper": SynthConfig(
        name="paper", box_size_h=400.0, clusters_per_bin=200, field_region="columns",
        progress=True,
    ),
}


def get_preset(name: str, **overrides) -> SynthConfig:
    """Return preset ``name``, with fields replaced by ``overrides``.

    Raises
    ------
    InputError
        Unknown preset or parameter.
    """
    if name not in PRESETS:
        raise InputError(f"unknown synth preset {name!r}; choose among {', '.join(PRESETS)}")
    try:
        return replace(PRESETS[name], **overrides)
    except TypeError as exc:
        raise InputError(f"bad synth parameter: {exc}") from None
