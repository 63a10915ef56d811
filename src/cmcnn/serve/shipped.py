"""The networks shipped with cmc: ONNX models by name (``Ypar``, ``multi`` …).

The repository's ``models/`` folder holds one ONNX file per network of Yan et al. (2020)
— ``Star.onnx``, ``Fxs.onnx``, ``Fxb.onnx``, ``Ypar.onnx`` and ``multi.onnx`` — each with
its model card (``<name>.md``).  The wheel carries them as the package data
``cmcnn/shipped/``; a source checkout run in place (``PYTHONPATH=src``) finds them in
``models/``.  ``CMC_MODELS=FOLDER`` points cmc at another folder of the same layout.

Everywhere cmc takes an ONNX model (``cmc predict``, ``cmc evaluate``, ``cmc interpret``,
:class:`cmcnn.Predictor`) a shipped network's name works as well as a path:

>>> from cmcnn.serve.shipped import resolve_model           # doctest: +SKIP
>>> resolve_model("Ypar")
PosixPath('.../cmcnn/shipped/Ypar.onnx')
"""
from __future__ import annotations

import os
from pathlib import Path

from cmcore.errors import InputError

#: The shipped networks: the paper's four single-channel CNNs and the multi-channel CNN.
NAMES = ("Star", "Fxs", "Fxb", "Ypar", "multi")


def models_dir() -> Path | None:
    """The folder holding the shipped models, or ``None`` when none is found.

    Looked up in this order: ``$CMC_MODELS``; the installed package data
    (``cmcnn/shipped/``); the ``models/`` folder of a source checkout.
    """
    env = os.environ.get("CMC_MODELS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]  # cmcnn/
    for folder in (package / "shipped", package.parents[1] / "models"):
        if any((folder / f"{n}.onnx").is_file() for n in NAMES):
            return folder
    return None


def shipped_models() -> dict[str, Path]:
    """Name → ONNX file of every shipped model present."""
    folder = models_dir()
    if folder is None:
        return {}
    return {n: folder / f"{n}.onnx" for n in NAMES if (folder / f"{n}.onnx").is_file()}


def resolve_model(model: str | os.PathLike) -> Path:
    """The ONNX file meant by ``model``: an existing path, or a shipped model's name.

    Parameters
    ----------
    model : str or path-like
        A path to an ONNX file, or one of :data:`NAMES` (case-insensitive).

    Raises
    ------
    InputError
        Neither an existing file nor a shipped model's name, or a name whose file is
        missing from this installation.
    """
    path = Path(model)
    if path.is_file():
        return path
    by_lower = {n.lower(): n for n in NAMES}
    name = by_lower.get(str(model).lower())
    if name is None:
        raise InputError(f"model {model}: no such file, and not a shipped model "
                         f"(shipped: {', '.join(NAMES)})")
    found = shipped_models()
    if name not in found:
        where = models_dir()
        raise InputError(f"shipped model {name} is not in this installation "
                         f"({'no models folder found' if where is None else f'looked in {where}'}; "
                         "reinstall cmc from a checkout with models/, or set CMC_MODELS=FOLDER)")
    return found[name]
