"""Deep Dream gradients of a trained network (Yan et al. 2020, §4, eq. 12).

    I⁽ᵖ⁾_ij = I⁽ᵖ⁻¹⁾_ij + α ∂M_pred/∂I_ij |_(I⁽ᵖ⁻¹⁾)                    (eq. 12)

with M_pred = log10(M200/M☉) predicted by the network and I the image in the
dataset's physical units (the asinh preprocessing is part of the network, so the
gradient is taken through it).  The paper's middle columns show the change of the
image after the iterations, I⁽ᵖ⁾ − I⁽⁰⁾, which for one iteration is α times the
gradient.  Uses TensorFlow's ``GradientTape`` (this module imports TensorFlow).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from cmcore.errors import InputError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclasses.dataclass
class DreamResult:
    """Deep Dream iterations of one image."""

    gradient: np.ndarray      # (npix, npix, C) ∂M/∂I at the input image [dex per unit of I]
    change: np.ndarray        # (npix, npix, C) I⁽ᵖ⁾ − I⁽⁰⁾
    step: float               # α
    iterations: int
    log10_m: list             # prediction before and after each iteration


def gradient(model, image: np.ndarray) -> tuple[np.ndarray, float]:
    """∂ log10 M_pred / ∂I of one (npix, npix, C) image (float64 copy) and the prediction."""
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(image, dtype=np.float32)[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=False)
    g = tape.gradient(y, x)
    return np.asarray(g[0], dtype=np.float64), float(np.asarray(y).reshape(-1)[0])


def default_step(image: np.ndarray, grad: np.ndarray, fraction: float = 0.01) -> float:
    """α such that the largest pixel change of the first iteration is ``fraction`` of max |I|."""
    gmax = float(np.max(np.abs(grad)))
    imax = float(np.max(np.abs(image)))
    if gmax == 0 or imax == 0:
        return 0.0
    return fraction * imax / gmax


def deep_dream(model, image: np.ndarray, iterations: int = 1, step: float | None = None) -> DreamResult:
    """Run eq. 12 for ``iterations`` steps of size ``step`` (default: :func:`default_step`)."""
    if iterations < 1:
        raise InputError(f"iterations must be >= 1, got {iterations}")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise InputError(f"expected one (npix, npix, C) image, got shape {image.shape}")
    g0, m0 = gradient(model, image)
    alpha = default_step(image, g0) if step is None else float(step)
    current, g, masses = image.astype(np.float64), g0, [m0]
    for p in range(iterations):
        if p:
            g, m = gradient(model, current.astype(np.float32))
            masses.append(m)
        current = current + alpha * g
    masses.append(gradient(model, current.astype(np.float32))[1])
    return DreamResult(g0, current - image, alpha, iterations, masses)
