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
quadrature).  The fused run directory holds only ``config.json`` (written by
:func:`cmcnn.train.fuse.fuse_runs`); :func:`build_fused` rebuilds the network from the
members' weights, so ``cmc export``, ``cmc evaluate`` and the mask scan treat it as any other run.
"""
from __future__ import annotations


import numpy as np




def build_fused(config: dict, load_model):
    """The fused Keras network of a fusion run's ``config.json``.

    ``load_model(run)`` gives each member's Keras network and configuration
    (:func:`cmcnn.train.training.load_model`, which calls this for a fusion run).
    """
    import keras
    from keras import layers

    from cmcnn.train.models import ChannelSlice

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
