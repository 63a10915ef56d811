"""Model cards: built from the ONNX metadata and a `cmc evaluate` of that very file."""
from __future__ import annotations

import json

import pytest

from cmcnn import cli
from cmcore.errors import InputError


def test_card_quotes_the_evaluation_of_the_onnx_file(trained_onnx, tmp_path):
    report = tmp_path / "report"
    # (the planted dataset has no instrument record, so no classical baseline: cards of
    # real models carry it, see models/*.md)
    assert cli.main(["evaluate", str(trained_onnx["model1"]), str(trained_onnx["model4"]),
                     "--data", str(trained_onnx["data"]), "--out", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    net = next(e for e in metrics["estimators"] if e["name"] == "model1")
    card = tmp_path / "model1.md"
    assert cli.main(["card", str(trained_onnx["model1"]), "--report", str(report), "--out", str(card),
                     "--check", "cmc evaluate model1.onnx --data planted.h5 --baseline Ypar --out x"]) == 0
    text = card.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| model1 network (this model, image only)"))
    assert f"{net['table2']['rms_pct']:.2f}" in row and f"{net['table2']['scatter_dex']:.4f}" in row
    assert f"± {net['table2']['scatter_dex_se']:.4f}" in row  # the scatter's error, by halo
    assert "model4" not in text                       # the other network is not this card's
    meta_cfg = json.loads((trained_onnx["run1"] / "config.json").read_text())
    assert meta_cfg["data_sha256"] in text and "single-channel CNN" in text
    assert "noise and beam not recorded" in text and "## Check this card" in text  # planted: no instrument


def test_card_refuses_a_report_without_the_model(trained_onnx, tmp_path):
    from cmcnn.evaluate.card import write_card

    report = tmp_path / "report"
    assert cli.main(["evaluate", str(trained_onnx["model4"]), "--data", str(trained_onnx["data"]),
                     "--out", str(report)]) == 0
    with pytest.raises(InputError, match="no network evaluated from model1.onnx"):
        write_card(trained_onnx["model1"], report, tmp_path / "card.md")
    assert not (tmp_path / "card.md").exists()


def test_card_refuses_another_model_of_the_same_name(trained_onnx, tmp_path):
    """A card matches its evaluation by the ONNX file's SHA-256, not by its name."""
    from cmcnn.evaluate.card import write_card

    impostor = tmp_path / "other" / "model1.onnx"
    impostor.parent.mkdir()
    impostor.write_bytes(trained_onnx["model4"].read_bytes())
    report = tmp_path / "report"
    assert cli.main(["evaluate", str(impostor), "--data", str(trained_onnx["data"]), "--out", str(report)]) == 0
    with pytest.raises(InputError, match="no network evaluated from model1.onnx"):
        write_card(trained_onnx["model1"], report, tmp_path / "card.md")


def test_card_of_a_redshift_aware_model_states_its_inputs_range_recipe_and_coverage(trained_onnx, tmp_path):
    report = tmp_path / "report"
    assert cli.main(["evaluate", str(trained_onnx["modelz"]), "--data", str(trained_onnx["data"]),
                     "--out", str(report)]) == 0
    net = json.loads((report / "modelz" / "metrics.json").read_text())
    card = tmp_path / "modelz.md"
    assert cli.main(["card", str(trained_onnx["modelz"]), "--report", str(report), "--out", str(card)]) == 0
    text = card.read_text()
    cfg = json.loads((trained_onnx["runz"] / "config.json").read_text())
    lo, hi = cfg["scaling"]["redshift"]["range"]
    assert f"trained on {lo:g} <= z <= {hi:g}" in text and "`log10_m200_err`" in text
    assert "| modelz network (this model, image + z)" in text
    assert "Adam, lr 0.003 annealed to 0 by a cosine, weight decay 0.0001 (biases spared)" in text
    assert f"±1σ holds {100 * net['coverage']['68']['observed']:.1f}" in text
