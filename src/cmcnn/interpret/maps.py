"""Inputs and outputs of ``cmc interpret``: images to explain, maps and figures.

An input is either a FITS cutout (``cmc render``: one channel, celestial WCS,
``CHANNEL``, ``REDSHIFT``, ``R200`` [comoving Mpc], ``H0``, ``OM0`` cards) or one image
of a dataset file (``DATA.h5 --index K``: the chosen channels, θ200 from
``labels/theta200_arcmin``, the true mass).  Maps are written as FITS with the
input's WCS (a cutout's own, or :func:`cmcore.render.cutout_wcs` for a dataset
image), as ``.npy``, and as a PNG laid out like the paper's Figs 8–11: the image,
then the map, with circles at 0.15 R200 and R200 when θ200 is known.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from cmcore.errors import FileFormatError, InputError
from cmcore.fileio import atomic_write

from cmcnn.interpret.core_ring import CORE_FRACTION


@dataclasses.dataclass
class InputImage:
    """One image to interpret."""

    image: np.ndarray                 # (npix, npix, C) float32, physical units
    channels: list
    pixel_arcsec: float
    header: object = None             # astropy Header with the celestial WCS
    theta200_arcmin: float | None = None
    log10_m200_true: float | None = None
    label: str = "image"
    redshift: float | None = None     # the header's REDSHIFT card, or the dataset label


def read_fits_cutout(path: str | os.PathLike) -> InputImage:
    """A ``cmc render`` FITS cutout (or any 2-D FITS image with a celestial WCS)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    path = Path(path)
    try:
        with fits.open(path) as hdul:
            data, header = hdul[0].data, hdul[0].header.copy()
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path}: not a readable FITS file ({exc})") from None
    if data is None or data.ndim != 2 or data.shape[0] != data.shape[1]:
        raise InputError(f"{path}: expected a square 2-D image, got shape {None if data is None else data.shape}")
    wcs = WCS(header).celestial
    scales = wcs.proj_plane_pixel_scales()
    pixel_arcsec = float(scales[0].to_value("arcsec")) if wcs.naxis == 2 else float("nan")
    theta = None
    if all(k in header for k in ("R200", "REDSHIFT", "H0", "OM0")):
        from astropy.cosmology import FlatLambdaCDM

        z = float(header["REDSHIFT"])
        d_a = FlatLambdaCDM(H0=float(header["H0"]), Om0=float(header["OM0"])).angular_diameter_distance(z)
        theta = float(np.degrees(float(header["R200"]) / (1 + z) / d_a.to_value("Mpc")) * 60.0)
    m200 = float(header["M200"]) if "M200" in header else None
    from cmcnn.serve.redshift import Refused, header_redshift

    try:
        z_card = header_redshift(header)
    except Refused as exc:
        raise InputError(f"{path}: {exc}") from None
    return InputImage(np.asarray(data, dtype=np.float32)[..., None], [str(header.get("CHANNEL", "image"))],
                      pixel_arcsec, wcs.to_header(), theta,
                      None if m200 is None or m200 <= 0 else float(np.log10(m200)), path.stem, z_card)


def read_dataset_image(path: str | os.PathLike, index: int, channels: list[str]) -> InputImage:
    """Image ``index`` of a cmc dataset, channels in the given order."""
    from cmcore.render import cutout_wcs

    from cmcnn.train.data import ImageSource

    with ImageSource(path, channels, cache="none") as src:
        if not 0 <= index < src.n_images:
            raise InputError(f"--index {index} is outside 0..{src.n_images - 1}")
        image = src.read(np.array([index]))[0]
        pix = float(src.attrs()["pixel_scale_arcsec"])
        theta = float(src.label("theta200_arcmin", np.array([index]))[0])
        logm = float(src.log10_m200[index])
        z = float(src.label("redshift", np.array([index]))[0])
    header = cutout_wcs(image.shape[0], pix).to_header()
    return InputImage(image, list(channels), pix, header, theta, logm, f"{Path(path).stem}_{index}", z)


def read_input(path: str | os.PathLike, index: int | None, channels: list[str] | None) -> InputImage:
    """A FITS cutout, or ``DATA.h5`` with ``index`` (and ``channels``, default all)."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist")
    if path.suffix.lower() in (".fits", ".fit", ".fts") or path.name.lower().endswith(".fits.gz"):
        if index is not None:
            raise InputError("--index applies to dataset files, not to a FITS cutout")
        return read_fits_cutout(path)
    if index is None:
        raise InputError(f"{path}: a dataset input needs --index K")
    if channels is None:
        from cmcore.datafile import open_dataset

        with open_dataset(path) as f:
            channels = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["channels"]]
    return read_dataset_image(path, index, channels)


def map_header(header, stride: int = 1, bunit: str = "", comment: str = ""):
    """The input's celestial WCS header for a map sampled every ``stride`` pixels from pixel 0."""
    from astropy.io import fits
    from astropy.wcs import WCS

    if header is None:
        return fits.Header()
    wcs = WCS(header)
    if stride > 1:
        wcs = wcs.slice((slice(None, None, stride), slice(None, None, stride)))
    out = wcs.to_header()
    if bunit:
        out["BUNIT"] = bunit
    if comment:
        out["COMMENT"] = comment
    return out


def write_map(out_dir: Path, name: str, data: np.ndarray, header) -> list[Path]:
    """``name.fits`` (with ``header``) and ``name.npy`` in ``out_dir``, atomically."""
    from astropy.io import fits

    out_dir.mkdir(parents=True, exist_ok=True)
    fits_path, npy_path = out_dir / f"{name}.fits", out_dir / f"{name}.npy"
    with atomic_write(fits_path) as tmp:
        fits.PrimaryHDU(np.asarray(data, dtype=np.float64), header=header).writeto(tmp, overwrite=True)
    with atomic_write(npy_path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(data))
    return [fits_path, npy_path]


def _circles(ax, inp: InputImage, scale: float = 1.0) -> None:
    """0.15 R200 and R200 circles about the image centre (``scale``: map pixels per image pixel)."""
    if inp.theta200_arcmin is None or not np.isfinite(inp.pixel_arcsec):
        return
    from matplotlib.patches import Circle

    n = inp.image.shape[0]
    r200 = inp.theta200_arcmin * 60.0 / inp.pixel_arcsec * scale
    c = (n - 1) / 2.0 * scale
    for r in (CORE_FRACTION * r200, r200):
        ax.add_patch(Circle((c, c), r, fill=False, color="k", lw=1.0))


def plot_panels(inp: InputImage, maps: list[tuple[str, np.ndarray, str]], out: str | os.PathLike,
                title: str = "", dpi: int = 110) -> Path:
    """One row per channel: the image (asinh stretch) and each map (diverging colours).

    ``maps``: (title, (npix', npix', C) or (npix', npix') array, colour-bar label).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_ch = inp.image.shape[-1]
    fig, axes = plt.subplots(n_ch, 1 + len(maps), figsize=(3.3 * (1 + len(maps)), 3.0 * n_ch), squeeze=False)
    n = inp.image.shape[0]
    for c in range(n_ch):
        img = inp.image[..., c].astype(np.float64)
        s = np.median(np.abs(img)) or 1.0
        ax = axes[c, 0]
        ax.imshow(np.arcsinh(img / s), origin="lower", cmap="magma")
        _circles(ax, inp)
        ax.set_title(f"{inp.channels[c]}" + ("" if inp.log10_m200_true is None
                                              else f"  log M200 = {inp.log10_m200_true:.2f}"), fontsize=9)
        for k, (name, data, unit) in enumerate(maps, start=1):
            d = data[..., c] if data.ndim == 3 else data
            v = float(np.max(np.abs(d))) or 1.0
            ax = axes[c, k]
            im = ax.imshow(d, origin="lower", cmap="RdBu_r", vmin=-v, vmax=v,
                           extent=(-0.5, n - 0.5, -0.5, n - 0.5))
            _circles(ax, inp)
            ax.set_title(name, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label(unit, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
    return out
