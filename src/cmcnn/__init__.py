"""cmcnn: networks on cmc images, and the ``cmc`` command line.

TensorFlow is imported lazily, only by the commands that train; rendering,
prediction and mask scans never load it.  :class:`Predictor` (onnxruntime) is
imported on first use, so ``import cmcnn`` stays light.
"""
from cmcore import __version__

__all__ = ["__version__", "Predictor"]


def __getattr__(name: str):
    if name == "Predictor":
        from cmcnn.serve.predictor import Predictor

        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
