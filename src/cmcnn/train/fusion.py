"""A multi-channel network made of single-channel ones: their masses combined linearly (stacking).

Each member is a trained single-channel run (``cmc train --channels Ypar`` …).  The fused
network takes the multi-channel image (and the redshift), gives each member its channel,
and predicts

    log10 M = b + Σ_k w_k μ_k,          σ = s · Σ_k |w_k| σ_k

with μ_k, σ_k the members' masses and calibrated errors.  ``w`` and ``b`` are the
least-squares fit of the true log10 M200 on the members' predictions over the
**validation** split (the members never trained on it; the test split is never read), and
``s`` makes ±σ and ±2σ cover at least 68.3 % and 95.4 % of the validation images (the members' errors are correlated,
so Σ|w_k|σ_k, their sum for fully correlated errors, is rescaled rather than added in
quadrature).  The fused run directory holds only ``config.json``; :func:`build_fused`
rebuilds the network from the members' weights, so ``cmc export``, ``cmc evaluate`` and the
mask scan treat it as any other run.
"""
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


def build_fused(config: dict):
    """The fused Keras network of a fusion run's ``config.json`` (members loaded from their runs)."""
    import keras
    from keras import layers

    from cmcnn.train.models import ChannelSlice
    from cmcnn.train.training import load_model

    fusion = config["fusion"]
    channels = list(config["channels"])
    npix = int(config["npix"])
    image = keras.Input(shape=(npix, npix, len(channels)), name="image", dtype="float32")
    z = keras.Input(shape=(1,), name="redshift", dtype="float32")
    mus, log_sigmas = [], []
    for k, member in enumerate(fusion["members"]):
        model, member_cfg = load_model(member["run"])
        model.name = f"member_{member['channel']}"
        x = ChannelSlice(channels.index(member["channel"]), name=f"{member['channel']}_input")(image)
        mu, err = model({"image": x, "redshift": z})
        mus.append(mu)
        # the member's calibrated ln σ: its error head plus ln(error_scale)
        log_sigmas.append(layers.Rescaling(1.0, offset=float(np.log(member["error_scale"])),
                                           name=f"{member['channel']}_ln_sigma")(err[:, 1:2]))
    w = np.asarray(fusion["weights"], dtype="float32")
    mu_all = layers.Concatenate(name="member_masses")(mus)
    out = layers.Dense(1, name="log10_m200", trainable=False)(mu_all)
    lsig = layers.Concatenate(name="member_ln_sigma")(log_sigmas)
    # ln Σ|w_k| σ_k = logsumexp(ln σ_k + ln|w_k|); members with w_k = 0 drop out
    shift = np.where(np.abs(w) > 0, np.log(np.maximum(np.abs(w), 1e-30)), -1e30).astype("float32")
    ln_sigma = layers.Lambda(lambda t: keras.ops.logsumexp(t + shift, axis=1, keepdims=True),
                             name="ln_sigma")(lsig)
    error = layers.Concatenate(name="error")([out, ln_sigma])
    fused = keras.Model([image, z], [out, error], name="cnn_fused")
    fused.get_layer("log10_m200").set_weights([w.reshape(-1, 1), np.array([fusion["intercept"]], "float32")])
    return fused


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
    from cmcnn.train.training import error_scale, predict_run

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
