"""A training run's ``history.csv``: reading it, and its learning curves (Yan et al. 2020, Fig. 4)."""
from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cmcore.errors import InputError
from cmcore.figures import pyplot, save_png

#: Columns of ``history.csv``, one row per epoch.
HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "learning_rate", "seconds")


def read_history(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``history.csv`` (``epoch,loss,val_loss,learning_rate,seconds``) into float arrays."""
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in HISTORY_COLUMNS if c not in header]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        reader.fieldnames = header
        rows = list(reader)
    if not rows:
        raise InputError(f"{path}: no epochs")
    try:
        return {c: np.array([float(r[c]) for r in rows]) for c in HISTORY_COLUMNS}
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None


def learning_curves(histories: Sequence[tuple[str, Mapping[str, np.ndarray] | None]], out: str | os.PathLike, *,
                    dpi: int = 110) -> Path:
    """Fig. 4: loss against epoch, one colour per ``(name, history)`` with a history (None: skipped)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, (name, h) in enumerate(histories):
        if h is None:
            continue
        colour = f"C{k % 10}"
        ax.plot(h["epoch"], h["val_loss"], color=colour, lw=1.4, label=f"{name} (validation)")
        ax.plot(h["epoch"], h["loss"], color=colour, lw=0.9, ls=":", label=f"{name} (training)")
        best = int(np.nanargmin(h["val_loss"]))
        ax.plot([h["epoch"][best]], [h["val_loss"][best]], "o", color=colour, ms=5)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss: mean squared error of log10 M200")
    ax.set_title("Learning curves (dots: lowest validation loss, the kept weights)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, out, dpi)
