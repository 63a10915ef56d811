"""The kernel and mask-scan benchmarks compare on equal terms (issue 22).

Tiny runs of ``cmcore.benchmarks.kernels.run`` and ``cmcnn.benchmarks.interpret.run``:
equal repeats and a warm-up for every method, 1-vs-1 (and N-vs-N) thread pairs, the
ratios exactly what the recorded medians give, and the record carrying the command,
the commit, the machine and the load average.  Timings themselves are never asserted.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from cmcore.benchmarks import kernels

ROOT = Path(__file__).resolve().parents[1]


def _check_context(record: dict) -> None:
    for key in ("argv", "command", "commit", "machine", "date_utc_start", "date_utc_end",
                "load_average_before", "load_average_after"):
        assert key in record, key
    assert record["command"] == " ".join(record["argv"])
    m = record["machine"]
    for key in ("cpu_model", "logical_cores", "usable_cores", "memory_bytes", "numpy", "platform"):
        assert key in m, key
    for key in ("load_average_before", "load_average_after"):
        assert record[key] is None or len(record[key]) == 3


def test_timed_rounds_warms_up_then_rotates():
    calls = []
    methods = [(name, lambda name=name: calls.append(name) or name) for name in "abc"]
    times, results = kernels.timed_rounds(methods, 3)
    assert results == {"a": "a", "b": "b", "c": "c"}
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_numpy_baselines_give_the_same_answers_as_cmc():
    from cmcore.cellindex import CellIndex
    from cmcore.projection import project

    ps = kernels.clustered_set(30_000)
    kw = dict(los=kernels.LOS, azimuth=kernels.AZIMUTH, depth=kernels.DEPTH, width=kernels.WIDTH,
              npix=kernels.NPIX)
    for scheme in ("ngp", "cic"):
        ref = project(ps.positions, ps.weights, kernels.CENTRE, kernels.BOXSIZE, scheme=scheme, **kw)
        for nt in (1, 2):
            img = kernels.numpy_project(ps.positions, ps.weights, kernels.CENTRE, kernels.BOXSIZE,
                                        scheme=scheme, nthreads=nt, block=4096)
            assert ref.sum() > 0
            np.testing.assert_allclose(img, ref, rtol=1e-12, atol=1e-12 * ref.max())
    idx = CellIndex(ps.positions, kernels.BOXSIZE)
    for c in ps.centres[:4]:
        got = kernels.numpy_select_sphere(ps.positions, c, 3.0, kernels.BOXSIZE, block=4096)
        assert np.array_equal(np.sort(got), np.sort(idx.select_sphere(c, 3.0)))


def test_kernel_record_compares_on_equal_terms():
    record = kernels.run([20_000], repeat=2, threads=(1, 2), swift=False, log=lambda s: None)
    _check_context(record)
    setup = record["setup"]
    assert setup["repeat"] == 2 and setup["warmup"] == 1 and setup["threads"] == [1, 2]
    assert set(setup["baselines"]) == {"ngp", "cic", "sph", "index"}
    rows = record["rows"]
    assert {r["dataset"] for r in rows} == {"random", "random/sfc", "clustered", "clustered/sfc"}
    for r in rows:
        assert isinstance(r["threads"], int) and r["threads"] >= 1, r
        if r["role"] == "once":          # the index build: timed once, no ratio
            assert r["repeat"] == 1 and r["ratio"] is None
            continue
        assert r["repeat"] == 2 == len(r["seconds_all"]) and r["warmup"] == 1, r
        assert r["seconds"] == pytest.approx(statistics.median(r["seconds_all"]), rel=1e-12)
        assert r["seconds_min"] == min(r["seconds_all"])
    measured = [r for r in rows if r["role"] == "measured" and r["case"] != "sph"]
    assert measured
    for r in measured:
        group = [b for b in rows if b["role"] == "baseline" and
                 (b["dataset"], b["n"], b["case"]) == (r["dataset"], r["n"], r["case"])
                 and b["method"] == r["baseline"]]
        base = next(b for b in group if b["threads"] == r["baseline_threads"])
        assert base["repeat"] == r["repeat"]
        assert r["baseline_threads"] <= r["threads"]
        # the fastest baseline row that uses at most as many threads
        eligible = [b["seconds"] for b in group if b["threads"] <= r["threads"]]
        assert base["seconds"] == min(eligible)
        assert r["ratio"] == pytest.approx(base["seconds"] / r["seconds"], rel=1e-12)
        assert r["ratio_min"] == pytest.approx(base["seconds_min"] / r["seconds_min"], rel=1e-12)
        if r["case"] in ("ngp", "cic") or r["method"] == "project: with index":
            assert r["max_rel_diff"] < 1e-12, r
    # 1-vs-1 pairs everywhere, and N-vs-N pairs wherever the baseline can use threads
    for dataset in ("random", "clustered"):
        for case, method, base in (("ngp", "cmc", "numpy"), ("cic", "cmc", "numpy"),
                                   ("index", "project: with index", "project: full scan"),
                                   ("index", "select_sphere: with index", "select_sphere: numpy scan")):
            threads = {1} if method.startswith("select_sphere") else {1, 2}
            for side in (method, base):
                got = {r["threads"] for r in rows if (r["dataset"], r["case"], r["method"]) == (dataset, case, side)}
                assert got == threads, (dataset, case, side, got)
            one = next(r for r in rows if (r["dataset"], r["case"], r["method"], r["threads"]) ==
                       (dataset, case, method, 1))
            assert one["baseline_threads"] == 1
    sph = [r for r in rows if r["case"] == "sph"]
    assert {(r["method"], r["threads"]) for r in sph if r["dataset"] == "random"} == {
        ("cmc (same particles)", 1), ("cmc (same particles)", 2), ("cmc (all N)", 1), ("cmc (all N)", 2)}
    table = kernels.format_table(record)
    for text in ("command:", "commit:", "machine:", "load average", "baselines (the fastest known way"):
        assert text in table


onnx_model = ROOT / "models" / "Fxs.onnx"


@pytest.mark.skipif(not onnx_model.is_file(), reason="no shipped models")
def test_mask_scan_record_compares_on_equal_terms():
    pytest.importorskip("onnxruntime")
    from cmcnn.benchmarks import interpret

    record = interpret.run({"fxs": onnx_model}, stride=24, repeat=2, log=lambda s: None)
    _check_context(record)
    assert record["repeat"] == 2 and "brute-split" in record["headline"]
    rows = {r["method"]: r for r in record["rows"]}
    assert set(rows) == {"brute", "brute-split", "fast"}
    for r in rows.values():
        assert r["repeat"] == 2 == len(r["seconds_all"]) and r["warmup"] == 1
        assert r["seconds"] == pytest.approx(statistics.median(r["seconds_all"]), rel=1e-12)
        assert r["seconds_min"] == min(r["seconds_all"])
        assert r["max_abs_diff_vs_brute_dex"] <= interpret.TOLERANCE_DEX
        assert r["centres"] == 25
    fast, split, brute = rows["fast"], rows["brute-split"], rows["brute"]
    assert fast["speedup_vs_brute_split"] == pytest.approx(split["seconds"] / fast["seconds"], rel=1e-12)
    assert fast["speedup_vs_brute_split_min"] == pytest.approx(split["seconds_min"] / fast["seconds_min"], rel=1e-12)
    assert fast["speedup_vs_brute"] == pytest.approx(brute["seconds"] / fast["seconds"], rel=1e-12)
    table = interpret.format_table(record)
    for text in ("command:", "commit:", "machine:", "load average", "vs brute-split"):
        assert text in table


def test_write_result_records_the_commit_the_run_loaded(tmp_path, monkeypatch):
    """write_result adds the command, the commit at import (the code that ran), a commit_at_end
    only when the tree changed during the run, the machine and the load averages."""
    import json

    import cmcore.benchmarks as bench

    monkeypatch.setattr(bench, "COMMIT_BEFORE", "abc123")
    monkeypatch.setattr(bench, "git_commit", lambda: "abc123")
    path = bench.write_result(tmp_path, "r", {"x": 1}, "table")
    rec = json.loads(path.read_text())
    assert rec["x"] == 1 and rec["commit"] == "abc123" and "commit_at_end" not in rec
    assert set(rec["load_average"]) == {"before", "after"} and "cpu_model" in rec["machine"]
    assert (tmp_path / "r.txt").read_text() == "table\n"
    monkeypatch.setattr(bench, "git_commit", lambda: "def456+dirty")
    rec = json.loads(bench.write_result(tmp_path, "r", {"x": 1}, "table").read_text())
    assert rec["commit"] == "abc123" and rec["commit_at_end"] == "def456+dirty"
