"""cmcore: simulation particles to mock cluster images.

Readers, geometry, compiled deposition kernels, observables, instrument
model, the synthetic universe and the dataset builder.  ``cmcore`` never
imports TensorFlow or onnxruntime.

The public functions are importable from here; their modules load on first
use, so that ``import cmcore`` stays cheap.
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .errors import CmcError, FileFormatError, InputError

#: public name -> module that defines it
_EXPORTS = {
    "project": "projection",
    "los_basis": "projection",
    "CellIndex": "cellindex",
    "Snapshot": "snapshot",
    "ParticleData": "snapshot",
    "read_snapshot": "readers",
    "HaloCatalogue": "halos",
    "read_halos": "halos",
    "write_halos": "halos",
    "find_halos": "halos",
    "spherical_overdensity": "halos",
    "particle_signals": "observables",
    "get_instrument": "instrument",
    "render_maps": "render",
    "render_observed": "render",
    "render_cutout": "render",
    "write_fits": "render",
    "DatasetConfig": "datafile",
    "open_dataset": "datafile",
    "build_dataset": "dataset",
}

__all__ = ["__version__", "CmcError", "FileFormatError", "InputError", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cmcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
