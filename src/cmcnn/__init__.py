"""cmcnn: networks on cmc images, and the ``cmc`` command line.

TensorFlow is imported lazily, only by the commands that train; rendering,
prediction and mask scans never load it.
"""
from cmcore._version import __version__

__all__ = ["__version__"]
