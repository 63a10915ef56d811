"""What a cmc ONNX model says about the images it takes: its ``metadata_props``.

:func:`cmcnn.serve.export.export_run` writes these keys (all values are strings, JSON where
structured) and :class:`cmcnn.serve.predictor.Predictor` reads them back to check every input
before predicting.  This module is the contract between the two; it imports neither
TensorFlow nor onnxruntime.

========================  ==================================================================
key                       value
========================  ==================================================================
``cmc_format``            ``cmc-onnx-model``
``cmc_format_version``    ``1``
``channels``              JSON list, the channels in input order (last axis of ``image``)
``units``                 JSON object, channel -> unit string (astropy/FITS, e.g. ``erg s-1 cm-2``)
``npix``                  image side in pixels
``pixel_scale_arcsec``    pixel side [arcsec]
``fov_arcmin``            field of view per side [arcmin]
``input_name``            ``image``; layout ``input_layout`` = ``NHWC`` (batch, npix, npix, C)
``inputs``                JSON list of the graph's inputs: ``["image"]``, or ``["image", "redshift"]``
                          for a network that takes each cutout's redshift (batch,) float32
``redshift_range``        JSON [z_min, z_max] of the training images (redshift-aware models only)
``output_name``           ``log10_m200``; ``output_units`` = ``log10(M200c/Msun)``
``outputs``               JSON list: ``["log10_m200"]``, or with ``"log10_m200_err"`` (the calibrated
                          1σ error of log10 M200 [dex], ``error_calibration`` says how)
``instrument``            instrument preset of the training dataset (``unknown`` if not recorded)
``instrument_detail``     JSON, per-channel noise rms and beam FWHM of that preset
``dataset_sha256``        SHA-256 of the training dataset file; ``dataset_name`` its file name
``test_metrics``          JSON of the evaluation's ``metrics.json``, or ``none measured``
``code_version``          cmc version that exported the model (``trained_with``: that trained it)
``training``              JSON: run name, epochs, best epoch and validation loss, seed, sizes
``scaling``               JSON: the asinh preprocessing constants inside the graph
``parity_max_abs_diff``   max |onnxruntime − Keras| [dex] on ``parity_images`` validation images
========================  ==================================================================
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from cmcore.errors import FileFormatError

FORMAT = "cmc-onnx-model"
FORMAT_VERSION = "1"
INPUT_NAME = "image"
REDSHIFT_NAME = "redshift"
OUTPUT_NAME = "log10_m200"
ERROR_NAME = "log10_m200_err"
OUTPUT_UNITS = "log10(M200c/Msun)"
#: ``test_metrics`` value when the export was given no metrics file.
NO_METRICS = "none measured"


@dataclass(frozen=True)
class ModelInfo:
    """The input contract of one exported model (from its ``metadata_props``)."""

    channels: tuple[str, ...]
    units: dict[str, str]
    npix: int
    pixel_scale_arcsec: float
    instrument: str = "unknown"
    dataset_sha256: str = ""
    code_version: str = ""
    test_metrics: dict | None = None
    extra: dict[str, str] = field(default_factory=dict)
    redshift_range: tuple[float, float] | None = None
    has_error: bool = False

    @cached_property
    def key(self) -> tuple:
        """What the input checks depend on (hashable)."""
        return (self.channels, tuple(sorted(self.units.items())), self.npix, self.pixel_scale_arcsec,
                self.redshift_range)

    @property
    def takes_redshift(self) -> bool:
        """Whether the network takes each cutout's redshift beside its image."""
        return self.redshift_range is not None

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one input image, (npix, npix, C)."""
        return (self.npix, self.npix, self.n_channels)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "model") -> ModelInfo:
        """Parse a model's custom metadata map; refuse files that are not cmc models."""
        if meta.get("cmc_format") != FORMAT:
            raise FileFormatError(f"{source} is not a cmc model (no cmc_format={FORMAT!r} in its metadata; "
                                  "export one with `cmc export`)")
        try:
            channels = tuple(json.loads(meta["channels"]))
            units = dict(json.loads(meta["units"]))
            npix = int(meta["npix"])
            scale = float(meta["pixel_scale_arcsec"])
        except (KeyError, ValueError, TypeError) as exc:
            raise FileFormatError(f"{source}: unreadable cmc metadata ({exc})") from None
        if not channels or npix < 1 or not scale > 0 or set(units) != set(channels):
            raise FileFormatError(f"{source}: inconsistent cmc metadata (channels {channels}, units {units}, "
                                  f"npix {npix}, pixel scale {scale})")
        metrics_text = meta.get("test_metrics", NO_METRICS)
        metrics = None if metrics_text == NO_METRICS else json.loads(metrics_text)
        try:
            inputs = json.loads(meta.get("inputs", json.dumps([INPUT_NAME])))
            outputs = json.loads(meta.get("outputs", json.dumps([OUTPUT_NAME])))
            z_range = tuple(float(v) for v in json.loads(meta["redshift_range"])) if REDSHIFT_NAME in inputs else None
        except (KeyError, ValueError, TypeError) as exc:
            raise FileFormatError(f"{source}: unreadable cmc metadata of the inputs/outputs ({exc})") from None
        if z_range is not None and not (len(z_range) == 2 and 0 < z_range[0] <= z_range[1]):
            raise FileFormatError(f"{source}: invalid redshift_range {z_range}")
        known = {"channels", "units", "npix", "pixel_scale_arcsec", "instrument", "dataset_sha256",
                 "code_version", "test_metrics", "inputs", "outputs", "redshift_range"}
        return cls(channels=channels, units=units, npix=npix, pixel_scale_arcsec=scale,
                   instrument=meta.get("instrument", "unknown"), dataset_sha256=meta.get("dataset_sha256", ""),
                   code_version=meta.get("code_version", ""), test_metrics=metrics,
                   extra={k: v for k, v in meta.items() if k not in known},
                   redshift_range=z_range, has_error=ERROR_NAME in outputs)

    def describe(self) -> str:
        """One line: channels, image size, pixel scale, instrument, redshift range."""
        chans = ", ".join(f"{c} [{self.units[c] or 'dimensionless'}]" for c in self.channels)
        z = (f"; redshift {self.redshift_range[0]:g}-{self.redshift_range[1]:g}" if self.takes_redshift
             else "; image only")
        return (f"{chans}; {self.npix}x{self.npix} px of {self.pixel_scale_arcsec:g} arcsec; "
                f"instrument {self.instrument}{z}{'; with errors' if self.has_error else ''}")


def minimal_metadata(channels, npix: int, pixel_scale_arcsec: float, units: Mapping[str, str],
                     redshift_range: tuple[float, float] | None = None, error: bool = False) -> dict[str, str]:
    """The keys :class:`ModelInfo` needs, for a network that is not from a training run (benchmarks, tests)."""
    meta = {"cmc_format": FORMAT, "cmc_format_version": FORMAT_VERSION, "channels": json.dumps(list(channels)),
            "units": json.dumps({c: units[c] for c in channels}), "npix": str(int(npix)),
            "pixel_scale_arcsec": repr(float(pixel_scale_arcsec)), "test_metrics": NO_METRICS}
    meta.update(io_metadata(redshift_range, error))
    return meta


def io_metadata(redshift_range: tuple[float, float] | None, error: bool) -> dict[str, str]:
    """The ``inputs``, ``outputs`` and ``redshift_range`` keys of a model."""
    meta = {"inputs": json.dumps([INPUT_NAME] + ([REDSHIFT_NAME] if redshift_range is not None else [])),
            "outputs": json.dumps([OUTPUT_NAME] + ([ERROR_NAME] if error else []))}
    if redshift_range is not None:
        meta["redshift_range"] = json.dumps([float(redshift_range[0]), float(redshift_range[1])])
    return meta
