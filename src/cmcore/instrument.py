"""Instrument model: Gaussian pixel noise, then a Gaussian beam (Yan et al. 2020, Table 1).

Presets ``paper``, ``paper-literal``, ``planck`` and ``ideal``; the two readings of the
paper's stellar noise, the order of noise and beam, and the beam's edges are in
``docs/instrument.md``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from .errors import InputError
from .observables import CHANNELS, check_channels

#: FWHM / σ of a Gaussian, 2√(2 ln 2) ≈ 2.355.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Table 1 stellar noise, 2.14e11 M☉ Mpc⁻², in M☉ kpc⁻² (the ``paper`` preset).
PAPER_STAR_NOISE = 2.14e11 / 1e6
#: Table 1 stellar noise read literally as M☉ per pixel (the ``paper-literal`` preset).
LITERAL_STAR_NOISE_MSUN = 2.14e11
#: Fraction of the sample's mean noise-free Star pixel taken as the rms (paper §2.2).
STAR_NOISE_FRACTION = 0.1
#: Units a channel's noise rms may be given in.
NOISE_UNITS = ("channel unit per pixel", "solMass per pixel")
#: Beam truncation radius in units of σ.
BEAM_TRUNCATE_SIGMA = 4.0


@dataclass(frozen=True)
class ChannelModel:
    """Noise and beam of one channel.

    Parameters
    ----------
    noise_rms : float
        Rms of the Gaussian noise per pixel, before smoothing, in ``noise_unit``.
    beam_fwhm_arcmin : float
        Full width at half maximum of the Gaussian beam [arcmin]; 0 for none.
    noise_unit : str
        ``"channel unit per pixel"`` (the image's own units) or ``"solMass per
        pixel"`` (``Star`` only: a mass, divided by the pixel area).
    """

    noise_rms: float = 0.0
    beam_fwhm_arcmin: float = 0.0
    noise_unit: str = NOISE_UNITS[0]

    def __post_init__(self) -> None:
        for name in ("noise_rms", "beam_fwhm_arcmin"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"{name} must be finite and >= 0, got {value}")
        if self.noise_unit not in NOISE_UNITS:
            raise InputError(f"noise_unit must be one of {NOISE_UNITS}, got {self.noise_unit!r}")

    @property
    def mass_per_pixel(self) -> bool:
        """True when the rms is a mass per pixel (divided by the pixel area)."""
        return self.noise_unit == NOISE_UNITS[1]


@dataclass(frozen=True)
class Instrument:
    """Per-channel noise and beam; see the module docstring for the presets."""

    name: str
    channels: Mapping[str, ChannelModel] = field(default_factory=dict)

    def __getitem__(self, channel: str) -> ChannelModel:
        check_channels([channel])
        return self.channels.get(channel, ChannelModel())

    def describe(self) -> dict:
        """JSON-ready description: preset name and per-channel noise and beam with units."""
        return {
            "name": self.name,
            "order": "noise added, then Gaussian beam",
            "channels": {
                ch: {
                    "noise_rms": self[ch].noise_rms,
                    "noise_unit": "solMass / kpc2 per pixel" if ch == "Star" and not self[ch].mass_per_pixel
                    else self[ch].noise_unit,
                    "beam_fwhm_arcmin": self[ch].beam_fwhm_arcmin,
                }
                for ch in CHANNELS
            },
        }


_PAPER = {
    "Star": ChannelModel(PAPER_STAR_NOISE, 0.0),
    "Fxs": ChannelModel(9e-16, 4.0 / 60.0),
    "Fxb": ChannelModel(9e-16, 4.0 / 60.0),
    "Ypar": ChannelModel(1e-8, 1.4),
}

#: The named presets.
PRESETS: dict[str, Instrument] = {
    "paper": Instrument("paper", _PAPER),
    "paper-literal": Instrument("paper-literal", {
        **_PAPER, "Star": ChannelModel(LITERAL_STAR_NOISE_MSUN, 0.0, NOISE_UNITS[1])}),
    "planck": Instrument("planck", {**_PAPER, "Ypar": ChannelModel(1e-6, 9.66)}),
    "ideal": Instrument("ideal", {ch: ChannelModel() for ch in CHANNELS}),
}


def get_instrument(
    preset: str | Instrument = "paper",
    *,
    noise: Mapping[str, float] | None = None,
    beam: Mapping[str, float] | None = None,
) -> Instrument:
    """Return a preset, optionally with custom noise rms / beam FWHM per channel.

    Parameters
    ----------
    preset : str or Instrument
        ``"paper"``, ``"paper-literal"``, ``"planck"``, ``"ideal"`` or an
        :class:`Instrument`.
    noise : mapping, optional
        ``{channel: rms}`` overriding the preset, in the preset channel's
        ``noise_unit``.
    beam : mapping, optional
        ``{channel: fwhm_arcmin}`` overriding the preset.

    Returns
    -------
    Instrument
        Named ``"<preset>+custom"`` when anything was overridden.
    """
    if isinstance(preset, Instrument):
        inst = preset
    else:
        try:
            inst = PRESETS[preset]
        except KeyError:
            raise InputError(
                f"unknown instrument preset {preset!r}; expected one of {', '.join(PRESETS)}"
            ) from None
    if not noise and not beam:
        return inst
    chans = {ch: inst[ch] for ch in CHANNELS}
    for ch, rms in (noise or {}).items():
        check_channels([ch])
        chans[ch] = ChannelModel(float(rms), chans[ch].beam_fwhm_arcmin, chans[ch].noise_unit)
    for ch, fwhm in (beam or {}).items():
        check_channels([ch])
        chans[ch] = ChannelModel(chans[ch].noise_rms, float(fwhm), chans[ch].noise_unit)
    return Instrument(f"{inst.name}+custom", chans)


def with_star_noise(instrument: str | Instrument, rms: float) -> Instrument:
    """``instrument`` with its ``Star`` noise replaced by ``rms`` [M☉ kpc⁻² per pixel]."""
    inst = get_instrument(instrument)
    chans = {ch: inst[ch] for ch in CHANNELS}
    chans["Star"] = ChannelModel(float(rms), inst["Star"].beam_fwhm_arcmin)
    return Instrument(f"{inst.name}+star-noise", chans)


def stellar_noise_from_sample(star_images) -> float:
    """The paper's stellar noise rule: rms = 0.1 × mean noise-free ``Star`` pixel.

    Parameters
    ----------
    star_images : array_like or iterable of array_like
        The noise-free ``Star`` images of the whole sample [M☉ kpc⁻²], one array
        (N, ny, nx) or a sequence of 2-D images (sizes may differ; every pixel
        weighs the same).

    Returns
    -------
    float
        Rms per pixel [M☉ kpc⁻²], so that the mean pixel has S/N = 10.
    """
    if isinstance(star_images, np.ndarray):
        star_images = [star_images]
    total, count = 0.0, 0
    for image in star_images:
        a = np.asarray(image, dtype=np.float64)
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise InputError("Star images must be finite and non-negative to set the stellar noise")
        total += float(a.sum())
        count += a.size
    if count == 0:
        raise InputError("need at least one Star pixel to set the stellar noise")
    return STAR_NOISE_FRACTION * total / count


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a generator, a seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def draw_noise(
    shape: tuple[int, ...], rms: float, rng: np.random.Generator | int | None
) -> np.ndarray:
    """Gaussian noise of rms ``rms``, ``rng.normal(0, rms, shape)``, float64."""
    return as_generator(rng).normal(0.0, rms, size=shape)


def beam_sigma_pixels(fwhm_arcmin: float, pixel_arcsec: float) -> float:
    """σ of a Gaussian beam of FWHM ``fwhm_arcmin`` in pixels of ``pixel_arcsec``."""
    if not (np.isfinite(pixel_arcsec) and pixel_arcsec > 0):
        raise InputError(f"pixel scale must be positive, got {pixel_arcsec}")
    return 60.0 * fwhm_arcmin / FWHM_PER_SIGMA / pixel_arcsec


def beam_margin_pixels(instrument: Instrument, channel: str, pixel_arcsec: float) -> int:
    """Pixels the beam reaches across an edge: ceil(4σ), 0 without a beam."""
    sigma = beam_sigma_pixels(instrument[channel].beam_fwhm_arcmin, pixel_arcsec)
    return int(np.ceil(BEAM_TRUNCATE_SIGMA * sigma))


def beam(image: np.ndarray, fwhm_arcmin: float, pixel_arcsec: float) -> np.ndarray:
    """Convolve ``image`` with a normalised circular Gaussian beam.

    Zero outside the image (``mode="constant"``), truncated at 4σ; see the
    module docstring for what that means at the edges.  ``fwhm_arcmin`` = 0
    returns a copy.
    """
    image = np.asarray(image, dtype=np.float64)
    sigma = beam_sigma_pixels(fwhm_arcmin, pixel_arcsec)
    if sigma == 0:
        return image.copy()
    return gaussian_filter(image, sigma, mode="constant", cval=0.0, truncate=BEAM_TRUNCATE_SIGMA)


def apply_instrument(
    channel: str,
    image: np.ndarray,
    instrument: str | Instrument,
    pixel_arcsec: float,
    rng: np.random.Generator | int | None = None,
    *,
    pixel_area_kpc2: float | None = None,
) -> np.ndarray:
    """Observe a noise-free image: add Gaussian noise, then smooth with the beam.

    Parameters
    ----------
    channel : str
        One of :data:`cmcore.observables.CHANNELS`.
    image : ndarray, shape (ny, nx)
        Noise-free image in the channel's units.
    instrument : str or Instrument
        Preset name or instrument.
    pixel_arcsec : float
        Pixel side [arcsec].
    rng : Generator, int or None
        Noise generator or seed; the same seed gives the same noise.
    pixel_area_kpc2 : float, optional
        Physical pixel area S [kpc²]; needed when the channel's noise is a mass
        per pixel (``paper-literal`` ``Star``), which is divided by S.

    Returns
    -------
    ndarray
        New float64 array; the input is not modified.
    """
    model = get_instrument(instrument)[channel]
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise InputError(f"image must be 2-D, got shape {image.shape}")
    out = image.copy()
    if model.noise_rms > 0:
        rms = model.noise_rms
        if model.mass_per_pixel:
            if pixel_area_kpc2 is None or not pixel_area_kpc2 > 0:
                raise InputError(f"{channel} noise is a mass per pixel: give pixel_area_kpc2 > 0")
            rms = rms / pixel_area_kpc2
        out += draw_noise(image.shape, rms, rng)
    return beam(out, model.beam_fwhm_arcmin, pixel_arcsec)
