"""The classical baseline: aperture signal → M200 through a power law (a scaling relation).

For every channel of a cmc dataset, the estimator is

    log10 M200 = α + β · ℓ(X),    X = Σ_aperture I_pix / pixel_normalisation(z)

where the sum runs over the pixels whose centres lie inside a circle about the image
centre (the cluster centre), and dividing by :func:`cmcore.observables.pixel_normalisation`
at the image's known redshift z turns the pixel sum into the intrinsic quantity of the
channel: a stellar mass [M☉] (``Star``), a luminosity 4π d_L² F [erg/s] (``Fxs``,
``Fxb``) or an integrated Compton parameter Y·d_A² [Mpc²] (``Ypar``).  This is how
scaling relations are used in practice (Y–M, L_X–M, M*–M).  No self-similar E(z)
factor is applied: the dataset places z = 0 clusters at 0.03 ≤ z ≤ 0.07 without evolving
them (docs/dataset.md).

What it is given
    ``redshift=True`` (the default, *image + z*): X is the intrinsic quantity above,
    and apertures may be physical.  ``redshift=False`` (*image only*, like a network
    without a redshift input): X is the plain pixel sum Σ I_pix in the image's units,
    over angular apertures only.  Compare a network with the baseline that knows
    what it knows.

Apertures
    Candidates are angular radii (arcmin, the same on the sky for every image) and
    physical radii (Mpc, θ = R/d_A(z) at each image's redshift).  A candidate larger
    than the largest circle inside the field (half the field of view) for any image
    of the dataset is skipped.  For every channel and candidate, α and β are fitted
    on the training split (ordinary least squares of log10 M200 on ℓ(X): the estimator
    of least mean squared log error, the loss of the CNNs); the candidate with the
    lowest mean squared error of log10 M200 on the validation split is chosen, and
    the test split is scored with it.

Negative sums
    Instrument noise has zero mean, so the aperture sum of a faint cluster can be
    zero or negative, and log X is then undefined.  ℓ is the softened logarithm

        ℓ(X) = log10(x₀) + asinh(X / 2x₀) / ln 10,

    which equals log10 X for X ≫ x₀, is finite and increasing for every X (log10 x₀ at
    X = 0), so a noise-dominated image maps to a low mass instead of failing.  x₀ is
    the noise rms of X in that aperture, measured by regenerating the recorded noise of
    (up to 256) training images with :func:`cmcore.datafile.noise_field`; for a
    noiseless instrument it is 10⁻³ of the median training X.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cmcore.datafile import SPLIT_NAMES, DatasetConfig, channel_units, noise_field, open_dataset, read_labels
from cmcore.errors import FileFormatError, InputError
from cmcore.fileio import atomic_write
from cmcore.halos import cosmology_from_json
from cmcore.observables import default_cosmology, pixel_normalisation

from cmcnn.evaluate.metrics import table2
from cmcnn.evaluate.predictions_csv import make_predictions, write_predictions

#: Candidate angular aperture radii [arcmin].
ANGULAR_RADII_ARCMIN = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
#: Candidate physical aperture radii [Mpc, physical].
PHYSICAL_RADII_MPC = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5, 0.75, 1.0)
#: Intrinsic quantity X of each channel (the pixel sum over pixel_normalisation).
INTRINSIC_UNITS = {"Star": "Msun", "Fxs": "erg/s", "Fxb": "erg/s", "Ypar": "Mpc2"}
#: Training images whose noise is regenerated to measure the softening scale x₀.
NOISE_SAMPLE = 256
_CHUNK = 128


@dataclass(frozen=True)
class Aperture:
    """A circular aperture about the image centre: ``angular`` [arcmin] or ``physical`` [Mpc]."""

    kind: str
    radius: float

    def __post_init__(self) -> None:
        if self.kind not in ("angular", "physical"):
            raise InputError(f"aperture kind must be angular or physical, got {self.kind!r}")
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise InputError(f"aperture radius must be positive, got {self.radius}")

    @property
    def unit(self) -> str:
        return "arcmin" if self.kind == "angular" else "Mpc"

    @property
    def label(self) -> str:
        return f"{self.radius:g}′" if self.kind == "angular" else f"{self.radius:g} Mpc"

    def theta_arcmin(self, d_a_mpc: np.ndarray) -> np.ndarray:
        """Angular radius [arcmin] for images at angular-diameter distances ``d_a_mpc``."""
        d_a_mpc = np.asarray(d_a_mpc, dtype=float)
        if self.kind == "angular":
            return np.full(d_a_mpc.shape, self.radius)
        return np.degrees(self.radius / d_a_mpc) * 60.0


def candidate_apertures(angular: Sequence[float] = ANGULAR_RADII_ARCMIN,
                        physical: Sequence[float] = PHYSICAL_RADII_MPC) -> list[Aperture]:
    """The candidate apertures, angular first."""
    return [Aperture("angular", float(r)) for r in angular] + [Aperture("physical", float(r)) for r in physical]


def pixel_radii(npix: int, pixel_arcmin: float) -> np.ndarray:
    """Distance of each pixel centre from the image centre [arcmin], shape (npix, npix).

    Pixel j's centre is at u = −W/2 + (j + ½)·W/npix (docs/internals.md), the cluster at 0.
    """
    c = (np.arange(npix) + 0.5 - npix / 2.0) * pixel_arcmin
    return np.hypot(c[None, :], c[:, None])


def enclosed_sums(images: np.ndarray, theta_arcmin: np.ndarray, pixel_arcmin: float) -> np.ndarray:
    """Sum of each image over the pixels whose centres lie within each radius.

    Parameters
    ----------
    images
        (n, npix, npix) images.
    theta_arcmin
        (n, k) aperture radii [arcmin], one row per image.
    pixel_arcmin
        Pixel side [arcmin].

    Returns
    -------
    ndarray
        (n, k) sums (float64), pixel centres at ``r <= theta`` included.
    """
    images = np.asarray(images)
    n, npix, _ = images.shape
    radii = pixel_radii(npix, pixel_arcmin).ravel()
    order = np.argsort(radii, kind="stable")
    sorted_r = radii[order]
    cum = np.cumsum(images.reshape(n, -1)[:, order].astype(np.float64), axis=1)
    cum = np.concatenate([np.zeros((n, 1)), cum], axis=1)
    counts = np.searchsorted(sorted_r, np.asarray(theta_arcmin, dtype=float), side="right")
    return np.take_along_axis(cum, counts, axis=1)


def soft_log10(x: np.ndarray, x0: float) -> np.ndarray:
    """ℓ(x) = log10 x₀ + asinh(x / 2x₀)/ln 10: log10 x for x ≫ x₀, finite for x ≤ 0."""
    if not x0 > 0:
        raise InputError(f"softening scale must be positive, got {x0}")
    return math.log10(x0) + np.arcsinh(np.asarray(x, dtype=float) / (2.0 * x0)) / math.log(10.0)


@dataclass
class ChannelFit:
    """The fitted baseline of one channel.

    Attributes
    ----------
    channel
        Dataset channel.
    aperture
        The chosen aperture.
    intercept, slope
        α and β of log10 M200 = α + β ℓ(X).
    softening
        x₀ of ℓ for the chosen aperture [``unit``].
    unit
        Unit of the intrinsic quantity X.
    n_train, n_validation
        Images used for the fit and for the choice.
    redshift
        Whether the estimator was given each image's redshift (image + z) or not (image only).
    candidates
        Per candidate aperture: its kind, radius, softening, fit and validation error.
    """

    channel: str
    aperture: Aperture
    intercept: float
    slope: float
    softening: float
    unit: str
    n_train: int
    n_validation: int
    candidates: list[dict] = field(default_factory=list)
    redshift: bool = True

    @property
    def given(self) -> str:
        """What the estimator is given: ``image + z`` or ``image only``."""
        return "image + z" if self.redshift else "image only"

    def predict_log10_m200(self, x: np.ndarray) -> np.ndarray:
        """log10 M200 [M☉] from intrinsic aperture quantities X."""
        return self.intercept + self.slope * soft_log10(x, self.softening)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aperture"] = {**asdict(self.aperture), "unit": self.aperture.unit, "label": self.aperture.label}
        d["given"] = self.given
        return d


@dataclass
class Baseline:
    """Baseline fits of a dataset's channels and their predictions on every image."""

    data: str
    fits: dict[str, ChannelFit]
    predictions: dict[str, dict[str, np.ndarray]]
    skipped: list[dict]


def _dataset_geometry(f) -> tuple[DatasetConfig, object, float, float, int]:
    try:
        config = DatasetConfig.from_json(f.attrs["config"])
        cosmo = cosmology_from_json(f.attrs["cosmology"]) or default_cosmology()
        pix = float(f.attrs["pixel_scale_arcsec"])
        fov = float(f.attrs["fov_arcmin"])
        npix = int(f.attrs["npix"])
    except KeyError as exc:
        raise FileFormatError(f"dataset lacks the attribute {exc}") from None
    return config, cosmo, pix, fov, npix


def fit_baseline(path: str | os.PathLike, channels: Sequence[str], *,
                 apertures: Sequence[Aperture] | None = None, progress: bool = False,
                 redshift: bool = True) -> Baseline:
    """Fit the aperture/power-law baseline of each channel (see the module docstring).

    Parameters
    ----------
    path
        A cmc dataset (docs/dataset.md) with train, validation and test images.
    channels
        Channels of the dataset to fit.
    apertures
        Candidate apertures; :func:`candidate_apertures` by default.
    progress
        Print one line per channel.
    redshift
        Give the estimator each image's redshift (intrinsic X, physical apertures allowed),
        or not (pixel sums over angular apertures: image only).

    Returns
    -------
    Baseline
        The fits and, per channel, predictions for every image of the dataset
        (columns of :mod:`cmcnn.evaluate.predictions_csv`).

    Raises
    ------
    InputError
        Unknown channel, no candidate aperture fits inside the field, or a split
        without images.
    """
    apertures = list(candidate_apertures() if apertures is None else apertures)
    if not redshift:
        apertures = [a for a in apertures if a.kind == "angular"]
        if not apertures:
            raise InputError("an image-only baseline needs angular apertures")
    if not channels:
        raise InputError("no channels given")
    with open_dataset(path) as f:
        have = [str(c) for c in f.attrs["channels"]]
        for c in channels:
            if c not in have:
                raise InputError(f"{path} has no channel {c!r} (it has {', '.join(have)})")
            if c not in INTRINSIC_UNITS:
                raise InputError(f"no baseline for channel {c!r}")
        config, cosmo, pix_arcsec, fov, npix = _dataset_geometry(f)
        labels = read_labels(f, ("m200", "log10_m200", "halo_id", "projection", "redshift", "split"))
        noise_channels = [str(c) for c in f["noise/seed"].attrs.get("channels", have)]
        seeds = f["noise/seed"][:]
        n = labels["m200"].size
        split = labels["split"]
        for code, name in enumerate(SPLIT_NAMES):
            if not (split == code).any():
                raise InputError(f"{path}: the {name} split has no images")
        z = labels["redshift"].astype(float)
        from astropy import units as u

        d_a = cosmo.angular_diameter_distance(z).to_value(u.Mpc)
        pixel_arcmin = pix_arcsec / 60.0
        r_max = npix * pixel_arcmin / 2.0
        usable, skipped = [], []
        for a in apertures:
            theta = a.theta_arcmin(d_a)
            if theta.max() > r_max * (1 + 1e-9):
                skipped.append({**asdict(a), "reason": f"radius {theta.max():.3g}′ exceeds the half-field {r_max:g}′ at z = {z[np.argmax(theta)]:.3f}"})
            else:
                usable.append(a)
        if not usable:
            raise InputError(f"no candidate aperture fits inside the {fov:g}′ field")
        theta = np.stack([a.theta_arcmin(d_a) for a in usable], axis=1)  # (n, k)
        train = np.flatnonzero(split == 0)
        noise_rows = train[np.linspace(0, train.size - 1, min(NOISE_SAMPLE, train.size)).round().astype(int)]
        fits, predictions = {}, {}
        for c in channels:
            norm = (np.array([pixel_normalisation(c, zi, pix_arcsec, cosmo) for zi in z]) if redshift
                    else np.ones(n))
            x = np.empty((n, len(usable)))
            dset = f[f"images/{c}"]
            for s in range(0, n, _CHUNK):
                e = min(s + _CHUNK, n)
                x[s:e] = enclosed_sums(dset[s:e], theta[s:e], pixel_arcmin) / norm[s:e, None]
            ci = noise_channels.index(c)
            noise = np.stack([noise_field(c, int(seeds[k, ci]), float(z[k]), config, cosmo) for k in noise_rows])
            x_noise = enclosed_sums(noise, theta[noise_rows], pixel_arcmin) / norm[noise_rows, None]
            fit, pred_log = _choose(c, usable, x, x_noise, labels["log10_m200"], split)
            if not redshift:
                fit = dataclasses.replace(fit, unit=f"{channel_units(c)} (pixel sum)", redshift=False)
            fits[c] = fit
            predictions[c] = make_predictions(np.arange(n), labels["halo_id"], labels["projection"], z, split,
                                              labels["m200"], 10.0 ** pred_log)
            if progress:
                print(f"  {c} ({fit.given}): aperture {fit.aperture.label}, log10 M = {fit.intercept:.3f} + {fit.slope:.3f} ℓ(X [{fit.unit}])", flush=True)
    return Baseline(str(path), fits, predictions, skipped)


def _choose(channel: str, apertures: list[Aperture], x: np.ndarray, x_noise: np.ndarray,
            log_m: np.ndarray, split: np.ndarray) -> tuple[ChannelFit, np.ndarray]:
    """Fit every aperture on train, choose on validation; the chosen fit and its log10 M for all images."""
    train, val = split == 0, split == 1
    candidates, preds = [], []
    for k, a in enumerate(apertures):
        x0 = _softening(x_noise[:, k], x[train, k])
        ell = soft_log10(x[:, k], x0)
        slope, intercept = _line_fit(ell[train], log_m[train])
        pred = intercept + slope * ell
        candidates.append({**asdict(a), "label": a.label, "softening": x0,
                           "intercept": float(intercept), "slope": float(slope),
                           "train_rms_dex": float(np.sqrt(np.mean((pred[train] - log_m[train]) ** 2))),
                           "validation_rms_dex": float(np.sqrt(np.mean((pred[val] - log_m[val]) ** 2))),
                           "negative_fraction": float(np.mean(x[:, k] <= 0))})
        preds.append(pred)
    best = int(np.argmin([row["validation_rms_dex"] for row in candidates]))
    row = candidates[best]
    fit = ChannelFit(channel, apertures[best], row["intercept"], row["slope"], row["softening"],
                     INTRINSIC_UNITS[channel], int(train.sum()), int(val.sum()), candidates)
    return fit, preds[best]


def _softening(x_noise: np.ndarray, x_train: np.ndarray) -> float:
    """x₀: rms of the noise-only X; 10⁻³ of the median positive training X when noiseless."""
    x0 = float(np.sqrt(np.mean(x_noise**2)))
    if x0 > 0:
        return x0
    positive = x_train[x_train > 0]
    # noiseless and no signal in the aperture: ℓ is constant whatever x₀, take 1
    return 1e-3 * float(np.median(positive)) if positive.size else 1.0


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y on x (slope 0 when x is constant)."""
    dx = x - x.mean()
    var = float(np.dot(dx, dx))
    slope = float(np.dot(dx, y - y.mean()) / var) if var > 0 else 0.0
    return slope, float(y.mean() - slope * x.mean())


def write_baseline(result: Baseline, out: str | os.PathLike, split: str = "test") -> dict:
    """Write ``baseline-<channel>.csv`` (every image) and ``baseline.json`` into ``out``.

    ``baseline.json`` holds, per channel, the fit, every candidate aperture and the
    Table 2 metrics (:func:`cmcnn.evaluate.metrics.table2`) on ``split``.  Returns that dictionary.
    """
    if split not in SPLIT_NAMES:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLIT_NAMES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"data": result.data, "split": split, "central_range": [13.25, 14.5],
              "skipped_apertures": result.skipped, "channels": {}}
    for c, fit in result.fits.items():
        cols = result.predictions[c]
        write_predictions(out / f"baseline-{c}.csv", cols)
        sel = cols["split"] == split
        entry = fit.to_dict()
        entry["predictions"] = f"baseline-{c}.csv"
        entry["table2"] = table2(cols["m200_true"][sel], cols["m200_pred"][sel], halo_id=cols["halo_id"][sel]).to_dict()
        report["channels"][c] = entry
    with atomic_write(out / "baseline.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report
