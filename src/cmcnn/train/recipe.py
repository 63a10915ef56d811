"""The training recipe: its settings (:class:`TrainConfig`), optimiser and learning-rate schedule, loss.

Two recipes: the paper's (RMSprop, inverse-time decay, the paper's layer list, image only)
and the survey one of the shipped networks (:meth:`TrainConfig.survey`; ``docs/train.md``).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from cmcore.errors import InputError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log-level default)

from cmcnn.train.data import parse_channels  # noqa: E402
from cmcnn.train.models import HEADS, gaussian_nll  # noqa: E402

#: Optimisers ``cmc train --optimizer`` offers.
OPTIMIZERS = ("rmsprop", "adam", "sgd")
#: Learning-rate schedules: the paper's lr/(1 + decay·step), or a cosine from lr to 0 over the run.
SCHEDULES = ("inverse-time", "cosine")


@dataclass
class TrainConfig:
    """Settings of one training run (``cmc train``)."""

    channels: list[str]
    epochs: int = 100
    batch_size: int = 50
    lr: float = 0.01
    decay: float = 1e-4
    optimizer: str = "rmsprop"
    seed: int = 0
    max_train: int | None = None
    augment: bool = False
    dropout: float = 0.1
    schedule: str = "inverse-time"
    weight_decay: float = 0.0
    redshift: bool = False
    head: str = "paper"
    uncertainty: bool = False

    def __post_init__(self) -> None:
        self.channels = parse_channels(self.channels)
        if self.epochs < 1:
            raise InputError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise InputError(f"--lr must be positive, got {self.lr}")
        if not (self.decay >= 0 and np.isfinite(self.decay)):
            raise InputError(f"--decay must be >= 0, got {self.decay}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.max_train is not None and self.max_train < 1:
            raise InputError(f"--max-train must be >= 1, got {self.max_train}")
        if not 0 <= self.dropout < 1:
            raise InputError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not (self.weight_decay >= 0 and np.isfinite(self.weight_decay)):
            raise InputError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.head not in HEADS:
            raise InputError(f"--head must be one of {', '.join(HEADS)}, got {self.head!r}")

    @property
    def resumable(self) -> tuple[str, ...]:
        """Settings that may change between sittings of one run: the epochs, unless the
        schedule depends on them (cosine)."""
        return ("epochs",) if self.schedule == "inverse-time" else ()

    @classmethod
    def survey(cls, channels, **kw) -> "TrainConfig":
        """The recipe of the shipped networks (``docs/train.md``, "The survey recipe")."""
        recipe = dict(epochs=30, lr=1e-3, optimizer="adam", schedule="cosine", weight_decay=1e-4,
                      augment=True, redshift=True, head="compact", uncertainty=True)
        recipe.update(kw)
        return cls(channels=channels, **recipe)


#: Every setting's default, for runs whose config.json predates a setting.
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def learning_rate_schedule(lr: float, decay: float):
    """Keras 2's ``lr / (1 + decay · step)`` as a Keras 3 schedule (step = optimizer iteration)."""
    return keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=decay)


def make_optimizer(config: TrainConfig, steps: int | None = None) -> keras.optimizers.Optimizer:
    """The optimizer of ``config`` with its learning-rate schedule.

    ``steps`` (the run's batches in all) is needed by the cosine schedule.  Weight decay
    (``config.weight_decay``) is decoupled (AdamW-style) and never touches biases —
    the output bias sits at log10 M ≈ 14 — nor the frozen scaling constants.
    """
    if config.schedule == "cosine":
        if steps is None:
            raise InputError("the cosine schedule needs the number of training steps")
        schedule = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=max(int(steps), 1), alpha=0.0)
    else:
        schedule = learning_rate_schedule(config.lr, config.decay)
    wd = config.weight_decay or None
    if config.optimizer == "rmsprop":
        opt = keras.optimizers.RMSprop(learning_rate=schedule, weight_decay=wd)
    elif config.optimizer == "adam":
        opt = keras.optimizers.Adam(learning_rate=schedule, weight_decay=wd)
    else:
        opt = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, weight_decay=wd)
    if wd:
        opt.exclude_from_weight_decay(var_names=["bias"])
    return opt


def error_loss(y_true, y_pred):
    """Loss of the ``error`` output ``[stopped log10 M, ln σ]``: the Gaussian negative log likelihood."""
    return keras.ops.mean(gaussian_nll(y_true[:, 0], y_pred[:, 1], y_pred[:, 0]))


def compile_model(model: keras.Model, optimizer) -> None:
    """Compile for the mean squared error of log10 M200 (plus the error head's likelihood)."""
    if len(model.outputs) == 2:
        model.compile(optimizer=optimizer, loss={"log10_m200": "mean_squared_error", "error": error_loss})
    else:
        model.compile(optimizer=optimizer, loss="mean_squared_error")
