"""cmcore: simulation particles to mock cluster images.

Readers, geometry, compiled deposition kernels, observables, instrument
model, the synthetic universe and the dataset builder.  ``cmcore`` never
imports TensorFlow or onnxruntime.
"""
from ._version import __version__
from .errors import CmcError, FileFormatError, InputError

__all__ = ["__version__", "CmcError", "FileFormatError", "InputError"]
