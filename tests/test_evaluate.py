"""``cmc evaluate`` and predictions files: Table 2 recomputed, figures, comparison, errors."""
from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

from cmcnn import cli
from cmcnn.evaluate.evaluation import evaluate
from cmcnn.evaluate.predictions_csv import COLUMNS, make_predictions, read_predictions, write_predictions
from cmcore.errors import InputError

PNG = b"\x89PNG\r\n\x1a\n"


def fake_predictions(seed: int, n: int = 400, bias_dex: float = 0.01, scatter_dex: float = 0.08) -> dict:
    rng = np.random.default_rng(seed)
    logm = rng.uniform(13.0, 15.0, n)
    split = rng.choice(3, size=n, p=(0.6, 0.2, 0.2))
    pred = logm + bias_dex + rng.normal(0.0, scatter_dex, n) - 0.15 * (logm - 14.0)
    return make_predictions(np.arange(n), 1000 + np.arange(n) // 4, np.array([b"x", b"y", b"z", b"diag"] * (n // 4)),
                            rng.uniform(0.03, 0.07, n), split, 10**logm, 10**pred)


def write_history(path, epochs: int = 12) -> None:
    e = np.arange(1, epochs + 1)
    val = 0.05 + 0.5 / e
    val[-3:] = val[-4] * 1.01  # the best epoch is not the last
    lines = ["epoch,loss,val_loss,learning_rate,seconds"]
    lines += [f"{k},{0.04 + 0.6 / k},{v},{0.01 / (1 + 1e-4 * 60 * k)},{12.5}" for k, v in zip(e, val)]
    path.write_text("\n".join(lines) + "\n")


def test_predictions_round_trip_exactly(tmp_path):
    cols = fake_predictions(0, n=40)
    write_predictions(tmp_path / "p.csv", cols)
    back = read_predictions(tmp_path / "p.csv")
    assert list(back) == list(COLUMNS)
    for c in COLUMNS:
        assert back[c].tolist() == cols[c].tolist()
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == ",".join(COLUMNS)


def test_evaluate_recomputes_table2_and_bins_from_a_predictions_file(tmp_path):
    cols = fake_predictions(1)
    run = tmp_path / "Ypar-net"
    run.mkdir()
    write_predictions(run / "predictions.csv", cols)
    write_history(run / "history.csv")
    other = tmp_path / "fxb.csv"
    write_predictions(other, fake_predictions(2, bias_dex=-0.02, scatter_dex=0.15))
    report = evaluate([run / "predictions.csv", other], tmp_path / "out")

    # independent computation over the test rows with 13.25 < log M < 14.5
    test = cols["split"] == "test"
    lt, lp = cols["log10_m200_true"][test], cols["log10_m200_pred"][test]
    c = (lt > 13.25) & (lt < 14.5)
    ratio = 10 ** (lp[c] - lt[c])
    m = json.loads((tmp_path / "out" / "Ypar-net" / "metrics.json").read_text())
    assert m["n_images"] == test.sum() and m["split"] == "test"
    t2 = m["table2"]
    assert t2["n"] == c.sum()
    assert t2["log_bias"] == pytest.approx(np.mean(lp[c] - lt[c]))
    # standard errors by halo: the bootstrap against the cluster-robust (sandwich) error of a mean
    hid = cols["halo_id"][test][c]

    def by_halo(x):
        _, inv = np.unique(hid, return_inverse=True)
        return np.sqrt(np.sum(np.bincount(inv, x - x.mean()) ** 2)) / x.size

    assert t2["n_halos"] == np.unique(hid).size
    assert t2["log_bias_se"] == pytest.approx(by_halo(lp[c] - lt[c]), rel=0.15)
    assert t2["frac_bias_pct"] == pytest.approx(100 * (ratio.mean() - 1))
    assert t2["frac_bias_pct_se"] == pytest.approx(by_halo(100 * ratio), rel=0.15)
    assert t2["rms_pct"] == pytest.approx(100 * np.sqrt(np.mean((ratio - 1) ** 2)))
    assert t2["robust_scatter_dex"] == pytest.approx(1.4826 * np.median(np.abs(np.log10(ratio) - np.median(np.log10(ratio)))))
    # per bin, whole range
    for row in m["per_bin"]:
        sel = (lt >= row["lo"]) & ((lt < row["hi"]) if row["hi"] < 15.0 else (lt <= row["hi"]))
        r = 10 ** (lp[sel] - lt[sel])
        assert row["n"] == sel.sum()
        if sel.sum() > 1:
            assert row["frac_bias_pct"] == pytest.approx(100 * (r.mean() - 1))
            assert row["scatter_dex"] == pytest.approx(np.std(np.log10(r), ddof=1))
    assert sum(row["n"] for row in m["per_bin"]) == test.sum()
    # regression towards the mean planted with slope -0.15: low bins high, high bins low
    assert m["per_bin"][0]["frac_bias_pct"] > 20 and m["per_bin"][-1]["frac_bias_pct"] < -10
    assert m["training"] == {"epochs": 12, "best_epoch": 9, "best_val_loss": pytest.approx(0.05 + 0.5 / 9),
                             "seconds": pytest.approx(150.0)}

    # the evaluated rows are written back, and every figure is a PNG
    assert read_predictions(tmp_path / "out" / "Ypar-net" / "predictions.csv")["index"].tolist() == cols["index"][test].tolist()
    for name in ("learning_curve", "pred_vs_true", "bias_vs_mass", "bias_hist"):
        assert (tmp_path / "out" / "Ypar-net" / f"{name}.png").read_bytes()[:8] == PNG
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "out" / "fxb" / "learning_curve.png").exists()  # no history beside it

    table = (tmp_path / "out" / "comparison.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| Ypar-net |"))
    assert f"{t2['rms_pct']:.2f}" in row and f"{t2['frac_bias_pct']:+.2f} ± {t2['frac_bias_pct_se']:.2f}" in row
    assert "| fxb | network |" in table
    assert [e["name"] for e in report["estimators"]] == ["Ypar-net", "fxb"]


def test_evaluate_a_run_directory_through_predict_run(tmp_path, monkeypatch):
    cols = fake_predictions(3)
    calls = []

    def predict_run(run, data=None, split="test", batch_size=256):
        calls.append((run, data, split, batch_size))
        return dict(cols)

    monkeypatch.setitem(sys.modules, "cmcnn.train.training", types.SimpleNamespace(predict_run=predict_run))
    run = tmp_path / "multi"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"channels": ["Star", "Fxs", "Fxb", "Ypar"], "data": "d.h5",
                                                 "data_sha256": "0" * 64, "epochs": 12}))
    write_history(run / "history.csv")
    report = evaluate([run], tmp_path / "out", split="validation", batch_size=64)
    assert calls == [(run, None, "validation", 64)]
    m = report["estimators"][0]
    assert m["channels"] == ["Star", "Fxs", "Fxb", "Ypar"] and m["split"] == "validation"
    assert m["n_images"] == (cols["split"] == "validation").sum()
    assert (tmp_path / "out" / "multi" / "learning_curve.png").is_file()
    assert not (tmp_path / "out" / "comparison.md").exists()  # one estimator: no comparison


def test_evaluation_never_imports_tensorflow(tmp_path):
    path = tmp_path / "p.csv"
    write_predictions(path, fake_predictions(4, n=80))
    code = ("import sys; from cmcnn.evaluate.evaluation import evaluate; import cmcnn.evaluate.baseline; "
            f"evaluate([{str(path)!r}], {str(tmp_path / 'o')!r}); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def _cli_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"cmc {argv[0]}: error:")
    return err


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    good = fake_predictions(5, n=40)
    out = str(tmp_path / "out")
    lines = (tmp_path / "g.csv")
    write_predictions(lines, good)
    text = lines.read_text().splitlines()

    missing = tmp_path / "missing.csv"
    missing.write_text("\n".join(",".join(r.split(",")[:6]) for r in text) + "\n")
    assert "missing column(s) m200_pred" in _cli_error(capsys, ["evaluate", str(missing), "--out", out])

    nan = tmp_path / "nan.csv"
    rows = [r.split(",") for r in text]
    rows[3][6] = "nan"
    nan.write_text("\n".join(",".join(r) for r in rows) + "\n")
    assert "m200_pred values are not finite" in _cli_error(capsys, ["evaluate", str(nan), "--out", out])

    train_only = tmp_path / "train.csv"
    write_predictions(train_only, {k: v[good["split"] == "train"] for k, v in good.items()})
    assert "no rows of the test split" in _cli_error(capsys, ["evaluate", str(train_only), "--out", out])

    assert "needs --data" in _cli_error(capsys, ["evaluate", "--baseline", "Ypar", "--out", out])
    assert "is neither a run directory, a predictions file, an ONNX model nor a shipped model" in _cli_error(capsys, ["evaluate", str(tmp_path / "nope.csv"), "--out", out])
    assert "not a training run" in _cli_error(capsys, ["evaluate", str(tmp_path), "--out", out])

    inconsistent = {k: v.copy() for k, v in good.items()}
    inconsistent["log10_m200_pred"][0] += 0.1
    with pytest.raises(InputError, match="log10_m200_pred differs"):
        write_predictions(tmp_path / "x.csv", inconsistent)
