"""The skill check (issue 20): the shipped networks on a universe they never saw (the paper preset's
physics, seed 1, 20 clusters per bin) beat the classical baseline given the same information and
reproduce their cards' σ; a constant does not."""
from __future__ import annotations

import numpy as np
import pytest

from cmcnn.evaluate.metrics import table2
from cmcnn.evaluate.predictions_csv import make_predictions
from cmcnn.evaluate.skill import card_scatter, skill_check
from cmcnn.serve.shipped import NAMES, models_dir, shipped_models

needs_models = pytest.mark.skipif(len(shipped_models()) < len(NAMES),
                                  reason="the shipped models (models/*.onnx) are absent")


def _cols(true, pred, halo):
    n = true.size
    return make_predictions(np.arange(n), halo, np.array(["x"] * n), np.full(n, 0.05), np.array(["test"] * n),
                            10**true, 10**pred)


def test_the_skill_check_passes_a_good_network_and_fails_a_constant():
    rng = np.random.default_rng(3)
    halo = np.repeat(np.arange(200), 4)
    true = np.repeat(rng.uniform(13.3, 14.4, 200), 4)
    baseline = _cols(true, true + rng.normal(0, 0.08, true.size), halo)
    good = _cols(true, true + rng.normal(0, 0.06, true.size), halo)
    assert skill_check(good, baseline, 0.06, 0.004) == []
    constant = _cols(true, np.full(true.size, true.mean()), halo)
    fails = skill_check(constant, baseline, 0.06, 0.004)
    assert len(fails) == 2 and "not below the baseline" in fails[0] and "from the card's" in fails[1]
    # a card quoting a σ the network does not reach fails too
    assert "from the card's" in skill_check(good, baseline, 0.03, 0.002)[0]


def test_the_card_scatter_is_read_from_the_test_table(tmp_path):
    card = tmp_path / "c.md"
    card.write_text("| estimator | n | σ (dex) |\n|---|---:|---:|\n"
                    "| Ypar network (this model, image + z) | 780 | 0.0720 ± 0.0051 |\n"
                    "| baseline Ypar (0.3 Mpc, image + z) | 780 | 0.0815 ± 0.0057 |\n")
    assert card_scatter(card) == (0.072, 0.0051, "image + z")


@pytest.mark.slow
@needs_models
def test_shipped_networks_beat_the_baseline_on_clusters_they_never_saw(tmp_path_factory):
    from cmcore.datafile import DatasetConfig
    from cmcore.dataset import build_dataset
    from cmcore.synth import generate

    from cmcnn.evaluate.baseline import fit_baseline
    from cmcnn.evaluate.evaluation import predict_dataset
    from cmcnn.evaluate.predictions_csv import select_split
    from cmcnn.serve.predictor import Predictor

    d = tmp_path_factory.mktemp("skill")
    # the paper preset's physics and geometry (box, line-of-sight columns) at a tenth of its clusters
    universe = generate("paper", seed=1, out=d / "universe", progress=False, clusters_per_bin=20)
    data = d / "heldout.h5"
    # half of the haloes in the test split: the baselines are fitted on 30 %, choose their aperture on 20 %
    build_dataset(universe.snapshot, universe.halos, data,
                  DatasetConfig(seed=1, split_fractions=(0.3, 0.2, 0.5)), workers=2, progress=False)
    baselines = {}
    for redshift in (True, False):
        res = fit_baseline(data, ["Star", "Fxs", "Fxb", "Ypar"], redshift=redshift)
        baselines[redshift] = {c: select_split(res.predictions[c], "test", str(data)) for c in res.fits}
    failures = {}
    for name in NAMES:
        pred = Predictor(name)
        net = predict_dataset(pred, data, "test")
        sigma, se, given = card_scatter(models_dir() / f"{name}.md")
        assert given == ("image + z" if pred.info.takes_redshift else "image only")
        own = baselines[pred.info.takes_redshift]
        candidates = [own[c] for c in pred.info.channels]  # multi: the best baseline of its channels
        best = min(candidates, key=lambda b: table2(b["m200_true"], b["m200_pred"]).scatter_dex)
        fails = skill_check(net, best, sigma, se)
        if fails:
            failures[name] = fails
    assert failures == {}
