"""The reproduction report's tables (cmcnn.evaluate.report), checked against planted predictions."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmcnn.evaluate.metrics import per_bin, table2
from cmcnn.evaluate.predictions_csv import make_predictions, read_predictions, write_predictions
from cmcnn.evaluate.report import PAPER_TABLE2, Comparison, Estimator, write_report


def md_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text`` as rows of cells (header included, rule line dropped)."""
    tables, cur = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                cur.append(cells)
        elif cur:
            tables.append(cur)
            cur = []
    if cur:
        tables.append(cur)
    return tables


def value(cell: str) -> float:
    """The first number of a cell (``+1.23 ± 0.45`` → 1.23)."""
    return float(cell.split("±")[0].replace("+", "").strip())


def _planted(path, factor_low: float, factor: float, seed: int):
    """Test predictions: M_pred = factor · M_true · lognormal, ``factor_low`` below 10^13.25."""
    rng = np.random.default_rng(seed)
    logm = rng.uniform(13.0, 15.0, 400)
    m = 10**logm
    pred = m * np.where(logm < 13.25, factor_low, factor) * 10 ** rng.normal(0, 0.05, m.size)
    split = np.where(np.arange(m.size) % 5 == 0, "validation", "test")
    write_predictions(path, make_predictions(np.arange(m.size), np.arange(m.size), ["x"] * m.size,
                                             np.full(m.size, 0.05), split, m, pred))


@pytest.fixture
def report(tmp_path):
    a, b = tmp_path / "exp" / "a" / "predictions.csv", tmp_path / "exp" / "b" / "predictions.csv"
    _planted(a, 1.2, 1.0, 1)
    _planted(b, 1.0, 0.9, 2)
    sections = [Comparison("table2", "Table 2", "text", [Estimator("Star", a, "Star"), Estimator("baseline Star", b)],
                           figures=[tmp_path / "fig.png"]),
                Comparison("pairs", "Pairs", "text", [Estimator("A", a), Estimator("B", b)],
                           pairs=[("Star", "A", "B")], pair_names=("a", "b"))]
    (tmp_path / "fig.png").write_bytes(b"png")
    data = write_report(tmp_path, sections, preamble="preamble", notes=["a note"])
    return tmp_path, a, b, data


def _recomputed(path):
    cols = read_predictions(path)
    sel = cols["split"] == "test"
    return cols["m200_true"][sel], cols["m200_pred"][sel]


def test_table2_is_recomputed_from_the_files_and_set_beside_the_paper(report):
    out, a, b, _ = report
    text = (out / "report.md").read_text()
    t2, extremes, pairs = md_tables(text)[:3]
    header, star, base = t2
    assert header[0] == "estimator" and star[0] == "Star" and base[0] == "baseline Star"
    assert value(star[3]) == pytest.approx(PAPER_TABLE2["Star"]["rms_pct"], abs=0.05)
    assert value(star[2]) == pytest.approx(PAPER_TABLE2["Star"]["frac_bias_pct"], abs=0.005)
    assert base[1:4] == ["–", "–", "–"]  # the paper has no baseline row
    for row, path in ((star, a), (base, b)):
        s = table2(*_recomputed(path))
        assert int(row[4]) == s.n
        assert value(row[5]) == pytest.approx(s.log_bias, abs=5e-5)
        assert value(row[6]) == pytest.approx(s.frac_bias_pct, abs=5e-3)
        assert value(row[7]) == pytest.approx(s.rms_pct, abs=5e-3)
        assert value(row[8]) == pytest.approx(s.scatter_dex, abs=5e-5)
    # extremes: the planted +20 % in the lowest bin of a, −10 % in the highest bin of b
    lo_a, hi_b = value(extremes[1][3]), value(extremes[2][6])
    bins_a = [x for x in per_bin(*_recomputed(a)) if x["n"]]
    assert extremes[1][1] == "13.00–13.25" and lo_a == pytest.approx(bins_a[0]["frac_bias_pct"], abs=0.05)
    assert lo_a == pytest.approx(20.0, abs=4.0) and hi_b == pytest.approx(-10.0, abs=4.0)
    assert "![fig](fig.png)" in text and "- a note" in text
    assert "`exp/a/predictions.csv`" in text


def test_pairs_and_json_agree_with_the_files(report):
    out, a, b, data = report
    pairs = md_tables((out / "report.md").read_text())[3]
    sa, sb = table2(*_recomputed(a)), table2(*_recomputed(b))
    row = pairs[1]
    assert row[0] == "Star"
    assert value(row[1]) == pytest.approx(sa.rms_pct, abs=5e-3) and value(row[2]) == pytest.approx(sb.rms_pct, abs=5e-3)
    assert value(row[3]) == pytest.approx(sb.rms_pct - sa.rms_pct, abs=1e-2)
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["sections"]["pairs"]["pairs"][0]["delta_rms_pct"] == pytest.approx(sb.rms_pct - sa.rms_pct)
    assert on_disk["sections"]["table2"]["rows"]["Star"]["table2"]["rms_pct"] == pytest.approx(sa.rms_pct)


def test_a_missing_predictions_file_is_an_error(tmp_path):
    from cmcore.errors import CmcError

    with pytest.raises((CmcError, OSError)):
        write_report(tmp_path, [Comparison("x", "X", "", [Estimator("A", tmp_path / "none.csv")])], preamble="")
