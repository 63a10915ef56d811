"""``cmc fuse``'s fit: the weights and error scale of a fusion of single-channel runs (:mod:`cmcnn.train.fusion`)."""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np

from cmcore import __version__
from cmcore.errors import InputError
from cmcore.fileio import atomic_write, file_sha256

from cmcnn.train.data import ImageSource


def fuse_runs(members: list[str | os.PathLike], data: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Fit the fusion of single-channel runs on the validation split of ``data``; write ``out/config.json``.

    Parameters
    ----------
    members
        Run directories of single-channel, redshift-aware networks with error heads, all
        trained on ``data``.
    data
        The members' dataset (its validation split fits the weights and the error scale).
    out
        The fused run directory.

    Returns
    -------
    dict
        The fused run's configuration (weights, intercept, error scale, validation rms).
    """
    from cmcnn.train.training import predict_run
    from cmcnn.train.calibration import error_scale

    data, out = Path(data), Path(out)
    cfgs = [json.loads((Path(m) / "config.json").read_text()) for m in members]
    for m, c in zip(members, cfgs):
        if len(c["channels"]) != 1 or not c.get("redshift") or not c.get("uncertainty"):
            raise InputError(f"{m}: a fusion member must be a single-channel run with the redshift input and the "
                             "error head (cmc train's survey recipe)")
    sha = file_sha256(data)
    if any(c["data_sha256"] != sha for c in cfgs):
        raise InputError(f"the members were not all trained on {data}")
    channels = [c["channels"][0] for c in cfgs]
    if len(set(channels)) != len(channels):
        raise InputError(f"one member per channel, got {channels}")
    val = [predict_run(m, data=data, split="validation") for m in members]
    y = val[0]["log10_m200_true"]
    x = np.stack([v["log10_m200_pred"] for v in val], axis=1)
    design = np.column_stack([x, np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    w, b = coef[:-1], float(coef[-1])
    mu = design @ coef
    sigma = np.abs(w) @ np.stack([v["log10_m200_err"] for v in val])
    scale = error_scale(np.abs(mu - y) / sigma)
    first = cfgs[0]
    with ImageSource(data, channels, cache="none") as src:
        npix = src.npix
    config = {
        "channels": channels, "npix": npix, "redshift": True, "uncertainty": True, "head": "fusion",
        "data": str(data.resolve()), "data_sha256": sha, "dataset_attrs": first.get("dataset_attrs"),
        "scaling": {"redshift": first["scaling"]["redshift"]}, "error_scale": scale,
        "fusion": {"members": [{"run": str(Path(m).resolve()), "channel": ch, "error_scale": c["error_scale"]}
                               for m, ch, c in zip(members, channels, cfgs)],
                   "weights": w.tolist(), "intercept": b, "fitted_on": "validation",
                   "validation_rms_dex": float(np.sqrt(np.mean((mu - y) ** 2))),
                   "member_validation_rms_dex": {ch: float(np.sqrt(np.mean((v["log10_m200_pred"] - y) ** 2)))
                                                 for ch, v in zip(channels, val)}},
        "epochs": 0, "batch_size": first.get("batch_size"), "seed": first.get("seed"),
        "n_train": first.get("n_train"), "n_validation": int(len(y)), "code_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    return config
