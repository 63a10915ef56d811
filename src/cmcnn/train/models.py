"""The networks of Yan et al. (2020), §2.4, in the Keras 3 functional API.

Single-channel network (the paper's list, one layer a line)::

    1. 3 × 3 convolution with 16 filters          (ReLU)
    2. 2 × 2, stride-2 average pooling
    3. 3 × 3 convolution with 32 filters          (ReLU)
    4. 2 × 2, stride-2 average pooling
    5. 3 × 3 convolution with 64 filters          (ReLU)
    6. 2 × 2, stride-2 average pooling
    7. Flatten
    8. Fully-connected with 200 neurons           (ReLU)   9. 10 % dropout
    10. Fully-connected with 100 neurons          (ReLU)  11. 10 % dropout
    12. Fully-connected with 100 neurons          (ReLU)  13. 10 % dropout
    14. Fully-connected with 20 neurons           (ReLU)
    15. Output neuron                             (linear): log10(M200 / M☉)

The multi-channel network convolves, pools and flattens each channel separately with
the same feature stack, concatenates the flattened features and ends with the same
dense head (the paper's Fig. 3b).

Choices the paper leaves open, made here:

- **Padding "same"**: a 3 × 3 convolution keeps the image size, so 120 px halve
  exactly to 60, 30, 15; the flattened layer has 15 × 15 × 64 = 14 400 features and the
  single-channel network 2 935 737 trainable parameters (≈ 76 MFLOP per image).  With
  "valid" padding the sizes would be 118 → 59 → 57 → 28 → 26 → 13.
- **Dropout 10 %** as in the layer list (the text says 20 %; ``dropout=`` changes it).
- **Preprocessing inside the network**: :class:`AsinhScaling` maps each channel from
  the dataset's physical units (M☉ kpc⁻², erg s⁻¹ cm⁻², dimensionless y) to
  ``(asinh(x / s) − μ) / σ``, with ``s``, ``μ``, ``σ`` fitted on the training split
  (:func:`fit_scaling`) and stored as non-trainable weights, so a trained model —
  and its ONNX export — takes images in physical units.  asinh is linear within the
  noise (|x| ≲ s, negative noise included) and logarithmic in the bright cores,
  which span four to six decades.
- **Output bias** initialised to the training split's mean log10 M200, so training
  starts from the mean mass rather than from zero.

Options beyond the paper (``docs/train.md``, "The survey recipe"):

- ``redshift=True``: a second input, ``redshift`` (batch, 1), standardised as
  ``(log10 z − μ)/σ`` by :class:`RedshiftScaling` (constants fitted on the training split)
  and joined to the input of every dense layer.  A survey knows its clusters' redshifts;
  without it the network must infer d_A(z) from the image.
- ``head="compact"``: a 1 × 1 convolution to :data:`COMPACT_FILTERS` maps per feature
  stack before flattening (15 × 15 × 8 = 1 800 features instead of 14 400) and dense
  layers of :data:`COMPACT_UNITS`: ~0.2 M weights per channel instead of 2.9 M, the
  same convolutions.
- ``uncertainty=True``: a second output, ``error`` = ``[log10 M, ln σ]``, σ the predicted
  error of log10 M200 [dex], from a small head on the *stopped gradient* of the last
  hidden layer: the mass is trained exactly as without it, and the error head learns
  the size of the residuals by the Gaussian likelihood (:func:`gaussian_nll`).
"""
from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

#: Filters of the three convolution layers (paper §2.4, layers 1, 3, 5).
CONV_FILTERS = (16, 32, 64)
#: Units of the fully-connected layers (layers 8, 10, 12, 14).
DENSE_UNITS = (200, 100, 100, 20)
#: The compact head: 1 × 1 convolution filters per feature stack, then these dense units.
COMPACT_FILTERS = 8
COMPACT_UNITS = (64, 32)
#: Dense heads :func:`build_model` offers.
HEADS = ("paper", "compact")
#: Initial ln σ of the error head (σ = 0.1 dex).
LN_SIGMA_INIT = float(np.log(0.1))


@keras.saving.register_keras_serializable(package="cmc")
class AsinhScaling(layers.Layer):
    """Per-channel ``(asinh(x / scale) − mean) / std``, with fitted, frozen constants.

    Parameters
    ----------
    n_channels : int
        Number of image channels (the last axis of the input).
    """

    def __init__(self, n_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_channels = int(n_channels)
        init = keras.initializers.Ones()
        self.scale = self.add_weight(shape=(self.n_channels,), initializer=init, trainable=False, name="scale")
        self.mean = self.add_weight(shape=(self.n_channels,), initializer="zeros", trainable=False, name="mean")
        self.std = self.add_weight(shape=(self.n_channels,), initializer=init, trainable=False, name="std")

    def call(self, x):
        return (keras.ops.arcsinh(x / self.scale) - self.mean) / self.std

    def set_constants(self, scale: Sequence[float], mean: Sequence[float], std: Sequence[float]) -> None:
        """Store the fitted constants (one value per channel each)."""
        for var, value in ((self.scale, scale), (self.mean, mean), (self.std, std)):
            value = np.asarray(value, dtype="float32").reshape(self.n_channels)
            if not np.all(np.isfinite(value)) or (var is not self.mean and np.any(value <= 0)):
                raise ValueError(f"invalid scaling constants {value!r}")
            var.assign(value)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_channels": self.n_channels}


@keras.saving.register_keras_serializable(package="cmc")
class RedshiftScaling(layers.Layer):
    """``(log10 z − mean) / std`` with fitted, frozen constants; input (batch, 1)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mean = self.add_weight(shape=(1,), initializer="zeros", trainable=False, name="mean")
        self.std = self.add_weight(shape=(1,), initializer="ones", trainable=False, name="std")

    def call(self, z):
        return (keras.ops.log10(z) - self.mean) / self.std

    def set_constants(self, mean: float, std: float) -> None:
        """Store the fitted mean and standard deviation of log10 z."""
        if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
            raise ValueError(f"invalid redshift scaling constants {mean!r}, {std!r}")
        self.mean.assign(np.array([mean], dtype="float32"))
        self.std.assign(np.array([std], dtype="float32"))


@keras.saving.register_keras_serializable(package="cmc")
class StopGradient(layers.Layer):
    """Identity forward, no gradient backward (the error head must not move the mass)."""

    def call(self, x):
        return keras.ops.stop_gradient(x)


@keras.saving.register_keras_serializable(package="cmc")
class ChannelSlice(layers.Layer):
    """Channel ``k`` of an (..., C) tensor, kept as a trailing axis of length 1."""

    def __init__(self, k: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = int(k)

    def call(self, x):
        return x[..., self.k:self.k + 1]

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}


def feature_stack(x, prefix: str, head: str = "paper"):
    """Layers 1–7: three [3 × 3 convolution + 2 × 2 average pooling], then flatten.

    With ``head="compact"`` a 1 × 1 convolution to :data:`COMPACT_FILTERS` maps comes
    before the flattening.
    """
    for i, filters in enumerate(CONV_FILTERS, start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{prefix}conv{i}")(x)
        x = layers.AveragePooling2D(pool_size=2, strides=2, name=f"{prefix}pool{i}")(x)
    if head == "compact":
        x = layers.Conv2D(COMPACT_FILTERS, 1, activation="relu", name=f"{prefix}reduce")(x)
    return layers.Flatten(name=f"{prefix}flatten")(x)


def dense_head(x, *, dropout: float = 0.1, output_bias: float = 14.0, z=None, head: str = "paper"):
    """Layers 8–15: dense 200-100-100-20 (ReLU, dropout after all but the last), linear output.

    ``z`` (the scaled redshift, (batch, 1)) is joined to the input of every dense layer;
    ``head="compact"`` uses :data:`COMPACT_UNITS`.  Returns the output and the last hidden layer.
    """
    units_list = DENSE_UNITS if head == "paper" else COMPACT_UNITS
    for i, units in enumerate(units_list, start=1):
        if z is not None:
            x = layers.Concatenate(name=f"with_redshift{i}")([x, z])
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
        if i < len(units_list):
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    hidden = x
    if z is not None:
        x = layers.Concatenate(name="with_redshift_out")([x, z])
    out = layers.Dense(1, name="log10_m200", bias_initializer=keras.initializers.Constant(output_bias))(x)
    return out, hidden


def error_head(hidden, out):
    """The ``error`` output ``[log10 M, ln σ]`` (batch, 2), both with stopped gradients into the network.

    ln σ comes from the last hidden layer through 16 ReLU units; the mass beside it (its
    gradient stopped too) lets the likelihood loss see the residual.
    """
    x = StopGradient(name="error_stop")(hidden)
    x = layers.Dense(16, activation="relu", name="error_dense")(x)
    ln_sigma = layers.Dense(1, name="ln_sigma", bias_initializer=keras.initializers.Constant(LN_SIGMA_INIT))(x)
    return layers.Concatenate(name="error")([StopGradient(name="mass_stop")(out), ln_sigma])


def gaussian_nll(y_true, ln_sigma, mu):
    """Per-image Gaussian negative log likelihood of ``y_true`` given ``mu`` and ``ln_sigma`` (constants dropped)."""
    r = keras.ops.stop_gradient(y_true - mu)
    return 0.5 * keras.ops.square(r) * keras.ops.exp(-2.0 * ln_sigma) + ln_sigma


def build_model(channels: Sequence[str], *, npix: int = 120, dropout: float = 0.1,
                output_bias: float = 14.0, redshift: bool = False, head: str = "paper",
                uncertainty: bool = False) -> keras.Model:
    """The paper's single-channel (one channel) or multi-channel (several) network, or a variant.

    Parameters
    ----------
    channels : sequence of str
        Channel names in input order (e.g. ``["Ypar"]`` or ``["Star", "Fxs", "Fxb", "Ypar"]``).
    npix : int
        Image side in pixels (120 in the paper; must be a multiple of 8).
    dropout : float
        Dropout fraction between the fully-connected layers (paper's list: 0.1).
    output_bias : float
        Initial bias of the output neuron, in log10 M☉.
    redshift : bool
        A second input ``redshift`` (batch, 1), joined to the dense head.
    head : {"paper", "compact"}
        The paper's dense layers, or the compact head (module docstring).
    uncertainty : bool
        A second output ``ln_sigma`` (batch, 1): ln of the predicted error of log10 M200.

    Returns
    -------
    keras.Model
        Input ``image`` (batch, npix, npix, len(channels)) float32 in physical units
        (and ``redshift`` with ``redshift=True``), output (batch, 1) log10(M200 / M☉)
        (a list ``[log10_m200, error]`` with ``uncertainty=True``, ``error`` (batch, 2)
        holding ``[log10 M, ln σ]``).  Its
        :class:`AsinhScaling` layer is named ``scaling`` and holds unit constants until
        :func:`fit_scaling` sets them; the :class:`RedshiftScaling` layer is named
        ``redshift_scaling``.
    """
    channels = list(channels)
    if not channels:
        raise ValueError("at least one channel is needed")
    if npix % 8:
        raise ValueError(f"npix must be a multiple of 8 (three 2x2 poolings), got {npix}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
    image = keras.Input(shape=(npix, npix, len(channels)), name="image", dtype="float32")
    inputs = [image]
    x = AsinhScaling(len(channels), name="scaling")(image)
    if len(channels) == 1:
        features = feature_stack(x, prefix="", head=head)
    else:
        stacks = [feature_stack(ChannelSlice(k, name=f"{ch}_slice")(x), prefix=f"{ch}_", head=head)
                  for k, ch in enumerate(channels)]
        features = layers.Concatenate(name="concatenate")(stacks)
    z = None
    if redshift:
        z_in = keras.Input(shape=(1,), name="redshift", dtype="float32")
        inputs.append(z_in)
        z = RedshiftScaling(name="redshift_scaling")(z_in)
    out, hidden = dense_head(features, dropout=dropout, output_bias=output_bias, z=z, head=head)
    outputs = [out, error_head(hidden, out)] if uncertainty else out
    name = f"cnn_{channels[0]}" if len(channels) == 1 else "cnn_multichannel"
    return keras.Model(inputs if redshift else image, outputs, name=name)


def fit_scaling(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the per-channel asinh scale, mean and standard deviation on training images.

    The scale ``s`` is the robust width of the pixel distribution, 1.4826 × the median
    absolute deviation about the median (close to the noise rms in noisy images, where
    most pixels are background), floored at 1e-3 of the 99.9th percentile of |x| so that
    noise-free images with many empty pixels still get a positive scale.

    Parameters
    ----------
    images : ndarray, (n, npix, npix, C)
        A sample of training images in physical units (finite).

    Returns
    -------
    scale, mean, std : ndarray, (C,)
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected images of shape (n, npix, npix, C), got {images.shape}")
    if not np.all(np.isfinite(images)):
        raise ValueError("training images contain NaN or inf")
    n_ch = images.shape[-1]
    scale, mean, std = np.empty(n_ch), np.empty(n_ch), np.empty(n_ch)
    for c in range(n_ch):
        x = images[..., c].ravel()
        mad = 1.4826 * np.median(np.abs(x - np.median(x)))
        top = np.percentile(np.abs(x), 99.9)
        s = max(mad, 1e-3 * top)
        if not s > 0:
            raise ValueError(f"channel {c} of the training images is identically zero")
        y = np.arcsinh(x / s)
        scale[c], mean[c], std[c] = s, y.mean(), max(y.std(), 1e-6)
    return scale, mean, std
