"""``cmc reproduce``: the grid's plan, its settings check, and the whole grid end to end (slow)."""
from __future__ import annotations

import json

import pytest

from cmcnn import cli
from cmcnn.evaluate.metrics import table2
from cmcnn.evaluate.predictions_csv import read_predictions
from cmcnn.workflows.reproduce import EXPERIMENTS, NETWORKS, SCALES, VARIANTS, Grid, plan, reproduce
from cmcore.errors import InputError

from test_report import md_tables, value


def _names(steps):
    return [s.name for s in steps]


def test_plan_covers_the_grid(tmp_path, tiny_universe):
    names = _names(plan(tmp_path, SCALES["test"]))
    assert names[0] == "universe" and names[-1] == "report"
    assert [n for n in names if n.startswith("dataset-")] == [f"dataset-{v}" for v in VARIANTS]
    trains = [n for n in names if n.startswith("train-")]
    assert len(trains) == 12 and {f"train-fiducial-{n}" for n in NETWORKS} <= set(trains)
    assert {"train-nointerl-multi", "train-planck-Ypar", "train-literal-Star"} <= set(trains)
    assert [n for n in names if n.startswith("evaluate-")] == [f"evaluate-{e}" for e in EXPERIMENTS]
    assert names[-2] == "interpret"
    # with a snapshot of one's own there is no universe step, and the datasets read it
    u = tiny_universe
    steps = plan(tmp_path / "o", SCALES["test"], snapshot=u.snapshot, halos=u.halos)
    assert "universe" not in _names(steps)
    assert [list(s.inputs) for s in steps[:4]] == [[u.snapshot, u.halos]] * 4


def test_the_grid_reads_what_it_promises(tmp_path):
    """The no-interloper dataset keeps 2 r200, Planck and literal presets, five networks each."""
    from cmcnn.workflows.reproduce import dataset_config, train_config

    s = SCALES["quick"]
    assert dataset_config(s, "nointerl", 0).interloper_radius == 2.0
    assert dataset_config(s, "fiducial", 0).interloper_radius is None
    assert dataset_config(s, "planck", 0).instrument == "planck"
    assert dataset_config(s, "literal", 0).instrument == "paper-literal"
    assert train_config(s, "multi", 0).channels == ["Star", "Fxs", "Fxb", "Ypar"]
    assert SCALES["full"].epochs == 1000 and SCALES["full"].preset == "paper" and SCALES["full"].per_bin == 200


def test_bad_arguments_and_other_settings_are_refused(tmp_path, capsys):
    assert cli.main(["reproduce", "--out", str(tmp_path / "o"), "--snapshot", str(tmp_path / "x")]) == 2
    assert "go together" in capsys.readouterr().err
    with pytest.raises(InputError, match="unknown scale"):
        reproduce(tmp_path / "o", "huge")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "reproduce.json").write_text(json.dumps({"scale": "full", "snapshot": None, "halos": None,
                                                                "seed": 0}))
    with pytest.raises(InputError, match="other settings"):
        reproduce(tmp_path / "o", "test", log=lambda line: None)


def test_plan_only_runs_nothing(tmp_path, capsys):
    assert cli.main(["reproduce", "--scale", "test", "--out", str(tmp_path / "o"), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "estimate" in out and "train-fiducial-multi" in out
    assert not (tmp_path / "o").exists()


def test_help_offers_quick_and_full(capsys):
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--help"])
    assert "{quick,full}" in capsys.readouterr().out


@pytest.mark.slow
def test_whole_grid_end_to_end_and_rerun_skips(tiny_universe, tmp_path):
    out = tmp_path / "repro"
    lines: list[str] = []
    summary = reproduce(out, "test", snapshot=tiny_universe.snapshot, halos=tiny_universe.halos, workers=1,
                        progress=False, log=lines.append)
    assert "estimate" in lines[0]
    assert all(kind == "ran" for _, kind, _ in summary.ran) and len(summary.ran) == 22
    g = Grid(out)
    text = (out / "report.md").read_text()
    tables = md_tables(text)
    # Table 2 section: every network and baseline row equals a recomputation from its CSV
    t2 = tables[0]
    rows = {r[0]: r for r in t2[1:]}
    files = {n: g.predictions("fiducial", f"fiducial-{n}") for n in NETWORKS}
    files.update({f"baseline {c}": g.predictions("fiducial", f"baseline-{c}") for c in ("Star", "Fxs", "Fxb", "Ypar")})
    assert set(rows) == set(files)
    for label, path in files.items():
        cols = read_predictions(path)
        test = cols["split"] == "test"
        s = table2(cols["m200_true"][test], cols["m200_pred"][test])
        assert int(rows[label][4]) == s.n > 0
        assert value(rows[label][7]) == pytest.approx(s.rms_pct, abs=5e-3)
        assert value(rows[label][6]) == pytest.approx(s.frac_bias_pct, abs=5e-3)
    # the ablation's differences, recomputed from the two experiments' files
    pairs = next(t for t in tables if t[0][1] == "RMS fiducial (%)")
    for r in pairs[1:]:
        rms = []
        for exp in ("fiducial", "nointerl"):
            cols = read_predictions(g.predictions(exp, f"{exp}-{r[0]}"))
            test = cols["split"] == "test"
            rms.append(table2(cols["m200_true"][test], cols["m200_pred"][test]).rms_pct)
        assert value(r[3]) == pytest.approx(rms[1] - rms[0], abs=1e-2)
    for fig in ("pred_vs_true", "bias_vs_mass", "bias_hist", "learning_curve"):
        assert f"(experiments/fiducial/{fig}.png)" in text and (g.experiment("fiducial") / f"{fig}.png").is_file()
    assert "Scale **test**" in text
    # the interpretation: four clusters per single-channel network, their figures, the F_cent/F_ring rows
    interp = json.loads((g.experiment("interpret") / "interpret.json").read_text())
    assert list(interp["networks"]) == ["Star", "Fxs", "Fxb", "Ypar"]
    assert all(len(n["clusters"]) == 4 for n in interp["networks"].values())
    assert len(interp["core_ring"]["rows"]) == 8
    for ch in interp["networks"]:
        assert f"(experiments/interpret/fig_{ch}.png)" in text and (g.experiment("interpret") / f"fig_{ch}.png").is_file()
    # a rerun skips every step after verifying it, and leaves the report as it was
    before = (out / "report.md").read_text()
    lines.clear()
    again = reproduce(out, "test", snapshot=tiny_universe.snapshot, halos=tiny_universe.halos, workers=1,
                      progress=False, log=lines.append)
    assert all(kind == "skipped" for _, kind, _ in again.ran) and len(again.ran) == 22
    assert sum("inputs verified; skipped" in line for line in lines) == 22
    assert (out / "report.md").read_text() == before
