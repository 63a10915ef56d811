"""``cmc demo --quick``, the main job, end to end with the shipped networks; a rerun resumes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmcnn import cli
from cmcnn.evaluate.metrics import table2
from cmcnn.evaluate.predictions_csv import read_predictions, select_split
from cmcnn.serve.shipped import NAMES, shipped_models

needs_models = pytest.mark.skipif(len(shipped_models()) < len(NAMES),
                                  reason="the shipped models (models/*.onnx) are absent")


def test_seed_of_the_training_universe_is_refused(tmp_path):
    from cmcnn.workflows.demo import TRAINING_SEED, plan
    from cmcore.errors import InputError

    with pytest.raises(InputError, match="draws the clusters the shipped networks were trained on"):
        plan(tmp_path, seed=TRAINING_SEED)


def test_a_folder_with_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "universe").mkdir()
    assert cli.main(["demo", "--quick", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "holds no earlier demo" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["universe"]


def test_steps_after_a_redone_step_are_counted_to_run(tmp_path):
    from cmcnn.workflows.demo import steps_to_run
    from cmcnn.workflows.steps import Step, StepRunner

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    first = Step("first", lambda: a.write_text("1"), outputs=[a], params={"v": 1})
    second = Step("second", lambda: b.write_text(a.read_text()), inputs=[a], outputs=[b])
    runner = StepRunner(tmp_path)
    runner.run(first)
    runner.run(second)
    assert steps_to_run([first, second], runner) == []
    changed = Step("first", lambda: a.write_text("2"), outputs=[a], params={"v": 2})
    assert [s.name for s in steps_to_run([changed, second], runner)] == ["first", "second"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    args = ["demo", "--quick", "--out", str(out), "--no-progress", "--workers", "1"]
    return out, args, cli.main(args)


@pytest.mark.slow
@needs_models
def test_demo_writes_the_report_with_every_network_and_baseline(demo, capsys):
    out, _, code = demo
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    rows = report["sections"]["table2"]["rows"]
    assert [r for r in rows if r.endswith("network")] == [f"{n} network" for n in NAMES]
    assert sum(r.startswith("baseline") for r in rows) == 8  # image + z and image only, per channel
    assert sum(r.startswith("baseline") and "image only" in r for r in rows) == 4
    md = (out / "report.md").read_text()
    assert "# cmc demo" in md and "| Ypar network |" in md.replace("  ", " ")
    for fig in ("evaluation/pred_vs_true.png", "mask_scan/mask_scan.png", "dataset_montage.png"):
        assert (out / fig).stat().st_size > 10_000 and fig in md
    scan = report["mask_scan"]
    assert scan["model"] == "multi.onnx" and scan["delta_min"] < scan["delta_max"]


@pytest.mark.slow
@needs_models
def test_table2_rows_recomputed_from_the_predictions_files(demo):
    out, _, _ = demo
    rows = json.loads((out / "report.json").read_text())["sections"]["table2"]["rows"]
    for name in NAMES:
        cols = select_split(read_predictions(out / "predictions" / f"{name}.csv"), "test", name)
        want = table2(cols["m200_true"], cols["m200_pred"]).to_dict()
        got = rows[f"{name} network"]["table2"]
        assert got["n"] == want["n"] > 0
        for key in ("log_bias", "rms_pct", "scatter_dex"):
            assert got[key] == pytest.approx(want[key], rel=1e-12)


@pytest.mark.slow
@needs_models
def test_demo_predictions_equal_cmc_predict(demo, tmp_path):
    """The demo's numbers are those `cmc predict Ypar dataset.h5` gives for the same images."""
    import h5py

    out, _, _ = demo
    table = tmp_path / "ypar.h5"
    assert cli.main(["predict", "Ypar", str(out / "dataset.h5"), "--out", str(table), "--no-progress"]) == 0
    with h5py.File(table) as f:
        index, logm = f["index"][:], f["log10_m200"][:]
    demo_cols = read_predictions(out / "predictions" / "Ypar.csv")
    by_row = dict(zip(index.tolist(), logm.tolist()))
    got = np.array([by_row[i] for i in demo_cols["index"].tolist()])
    np.testing.assert_allclose(demo_cols["log10_m200_pred"], got, rtol=0, atol=2e-6)


@pytest.mark.slow
@needs_models
def test_rerun_resumes_without_redoing_anything(demo, capsys):
    out, args, _ = demo
    capsys.readouterr()
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "0 to run" in text and text.count("skipped") == 10


def test_summary_prints_a_dash_for_missing_numbers():
    from pathlib import Path

    from cmcnn.workflows.demo import DemoSummary, summary_lines

    rows = {"Ypar network": {"n": 96, "log_bias": 0.0215, "rms_pct": 21.94, "scatter_dex": 0.0841},
            "Star network": {"n": 1, "log_bias": 0.1, "rms_pct": None, "scatter_dex": None}}
    lines = summary_lines(DemoSummary(Path("demo-out/report.md"), rows, 170.0))
    assert lines[1] == "  Ypar network                    96             +0.0215     21.9    0.084"
    assert lines[2].split()[-2:] == ["–", "–"] and "+0.1000" in lines[2]
