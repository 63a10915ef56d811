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
``output_name``           ``log10_m200``; ``output_units`` = ``log10(M200c/Msun)``
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
OUTPUT_NAME = "log10_m200"
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

    @cached_property
    def key(self) -> tuple:
        """What the input checks depend on (hashable)."""
        return (self.channels, tuple(sorted(self.units.items())), self.npix, self.pixel_scale_arcsec)

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
        known = {"channels", "units", "npix", "pixel_scale_arcsec", "instrument", "dataset_sha256",
                 "code_version", "test_metrics"}
        return cls(channels=channels, units=units, npix=npix, pixel_scale_arcsec=scale,
                   instrument=meta.get("instrument", "unknown"), dataset_sha256=meta.get("dataset_sha256", ""),
                   code_version=meta.get("code_version", ""), test_metrics=metrics,
                   extra={k: v for k, v in meta.items() if k not in known})

    def describe(self) -> str:
        """One line: channels, image size, pixel scale, instrument."""
        chans = ", ".join(f"{c} [{self.units[c] or 'dimensionless'}]" for c in self.channels)
        return (f"{chans}; {self.npix}x{self.npix} px of {self.pixel_scale_arcsec:g} arcsec; "
                f"instrument {self.instrument}")


def minimal_metadata(channels, npix: int, pixel_scale_arcsec: float, units: Mapping[str, str]) -> dict[str, str]:
    """The keys :class:`ModelInfo` needs, for a network that is not from a training run (benchmarks)."""
    return {"cmc_format": FORMAT, "cmc_format_version": FORMAT_VERSION, "channels": json.dumps(list(channels)),
            "units": json.dumps({c: units[c] for c in channels}), "npix": str(int(npix)),
            "pixel_scale_arcsec": repr(float(pixel_scale_arcsec)), "test_metrics": NO_METRICS}
