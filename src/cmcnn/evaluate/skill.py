"""The skill check of a shipped network on clusters it never saw (issue 20, CI's slow suite).

A network passes when, on the same test images with 13.25 < log M200 < 14.5,

1. its scatter σ (dex) is below that of the classical baseline given the same information
   (image + z for a redshift-aware network, image only otherwise), and
2. its σ agrees with the σ its model card quotes, within ``n_sigma`` times the two
   bootstrap errors (over haloes) added in quadrature.

A network that predicts a constant fails both.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from cmcore.errors import FileFormatError

from cmcnn.evaluate.metrics import table2

#: The card's network row: "| NAME network (this model, GIVEN) | … | σ ± se |".
_ROW = re.compile(r"^\| \S+ network \(this model, (?P<given>[^)]*)\) \|.*\| (?P<s>[0-9.]+) ± (?P<se>[0-9.]+) \|$")


def card_scatter(card: str | os.PathLike) -> tuple[float, float, str]:
    """σ (dex), its bootstrap error and what the network is given, from a model card's test table."""
    for line in Path(card).read_text().splitlines():
        m = _ROW.match(line.strip())
        if m:
            return float(m["s"]), float(m["se"]), m["given"]
    raise FileFormatError(f"{card}: no network row with σ ± its error in the test table")


def skill_check(net: dict, baseline: dict, card_sigma: float, card_sigma_se: float,
                n_sigma: float = 2.0) -> list[str]:
    """Why a network fails the skill check (an empty list when it passes).

    Parameters
    ----------
    net, baseline
        Predictions columns (``m200_true``, ``m200_pred``, ``halo_id``) of the network and of
        the baseline given the same information, on the same images.
    card_sigma, card_sigma_se
        σ and its error quoted by the network's model card.
    n_sigma
        Allowed distance between the measured and the quoted σ, in combined errors.
    """
    if not np.array_equal(np.asarray(net["halo_id"]), np.asarray(baseline["halo_id"])):
        raise ValueError("the network and the baseline must be scored on the same images")
    t_net = table2(net["m200_true"], net["m200_pred"], halo_id=net["halo_id"])
    t_base = table2(baseline["m200_true"], baseline["m200_pred"], halo_id=baseline["halo_id"])
    fails = []
    if not t_net.scatter_dex < t_base.scatter_dex:
        fails.append(f"σ {t_net.scatter_dex:.4f} dex is not below the baseline's {t_base.scatter_dex:.4f}")
    tolerance = n_sigma * math.hypot(t_net.scatter_dex_se, card_sigma_se)
    if not abs(t_net.scatter_dex - card_sigma) <= tolerance:
        fails.append(f"σ {t_net.scatter_dex:.4f} ± {t_net.scatter_dex_se:.4f} dex is {n_sigma:g} combined errors "
                     f"or more from the card's {card_sigma:.4f} ± {card_sigma_se:.4f}")
    return fails
