"""Figures quoted in the documentation agree with the recorded runs in bench/results/.

Every performance or scale figure the README, docs/*.md, bench/README.md and the model
cards (models/*.md) quote comes from a JSON file a script wrote (with the machine and
the command); these tests read the quoted numbers back from the text and compare them
with the JSON, so a figure cannot drift from its record.  The records of the two
benchmarks issue 22 made fair (kernels.json, interpret.json) must also show that they
compared on equal terms (threads, repeats, warm-up, order, context).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

#: Kernel-table rows: label prefix -> (case, method, threads) in kernels.json; "N" is the
#: record's largest thread count (the N-vs-N figure), 1 the 1-vs-1 one.
KERNEL_ROWS = {
    "NGP vs NumPy": ("ngp", "cmc", "N"),
    "CIC vs NumPy": ("cic", "cmc", "N"),
    "SPH vs swiftsimio": ("sph", "cmc (same particles)", "N"),
    "project per cluster": ("index", "project: with index", "N"),
    "`select_sphere`": ("index", "select_sphere: with index", 1),
}
#: Columns of the README's kernel table.
KERNEL_COLUMNS = (("random", 10**7), ("clustered", 10**7), ("random", 10**8), ("clustered", 10**8))
#: Targets in bench/README.md: case -> (method, threads).
TARGET_CASES = {"ngp": ("cmc", "N"), "cic": ("cmc", "N"), "sph": ("cmc (same particles)", "N"),
                "index": ("project: with index", "N")}


def _json(name: str) -> dict:
    path = RESULTS / name
    if not path.is_file():
        pytest.skip(f"{path} not recorded")
    return json.loads(path.read_text())


def _ratio(kernels: dict, dataset: str, n: int, case: str, method: str, threads) -> float:
    if threads == "N":
        threads = max(kernels["setup"]["threads"])
    rows = [r for r in kernels["rows"] if (r["dataset"], r["n"], r["case"], r["method"]) ==
            (dataset, n, case, method) and (threads is None or r["threads"] == threads)]
    assert len(rows) == 1, (dataset, n, case, method, threads)
    return rows[0]["ratio"]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _agrees(quoted: float, recorded: float) -> bool:
    """A quoted ratio is the recorded one rounded (to 2-3 significant figures)."""
    return abs(quoted - recorded) <= max(0.05 * recorded, 0.051)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def test_readme_kernel_table_matches_kernels_json():
    kernels = _json("kernels.json")
    table = _section((ROOT / "README.md").read_text(), "## Benchmarks")
    checked = 0
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        key = next((k for k in KERNEL_ROWS if cells[0].startswith(k)), None)
        if key is None:
            continue
        case, method, threads = KERNEL_ROWS[key]
        for (dataset, n), cell in zip(KERNEL_COLUMNS, cells[1:5]):
            main = re.match(r"([\d,.]+)×", cell)
            assert main, cell
            got = _ratio(kernels, dataset, n, case, method, threads)
            assert _agrees(_number(main.group(1)), got), (line, dataset, n, got)
            spatial = re.search(r"\(([\d,.]+)× in spatial order\)", cell)
            if spatial:
                got = _ratio(kernels, f"{dataset}/sfc", n, case, method, threads)
                assert _agrees(_number(spatial.group(1)), got), (line, dataset, n, got)
            checked += 1
    assert checked == 4 * len(KERNEL_ROWS)


def test_readme_dataset_figures_match_dataset_json():
    """README's dataset bullet quotes dataset.json: seconds and peak memory of both sources."""
    rec = _json("dataset.json")
    rows = {(r["source"], r["workers"]): r for r in rec["rows"]}
    text = _flat((ROOT / "README.md").read_text())
    m = re.search(r"(\d+) images with `--workers 2`: ([\d.]+) s at ([\d.]+) GiB peak from the columns "
                  r"against ([\d.]+) s at ([\d.]+) GiB in memory", text)
    assert m, "README no longer quotes the dataset benchmark in the expected form"
    index, memory = rows[("index", 2)], rows[("memory", 2)]
    assert int(m[1]) == index["images"] == memory["images"] and rec["identical_images"]
    assert float(m[2]) == pytest.approx(index["seconds"], abs=0.51)
    assert float(m[3]) == pytest.approx(index["peak_rss_bytes"] / 2**30, abs=0.006)
    assert float(m[4]) == pytest.approx(memory["seconds"], abs=0.51)
    assert float(m[5]) == pytest.approx(memory["peak_rss_bytes"] / 2**30, abs=0.006)
    dataset_md = _flat((ROOT / "docs" / "dataset.md").read_text())
    m = re.search(r"234 M peaked at ([\d.]+) GiB.*?whatever the size of the snapshot: ([\d.]+) GiB peak for the "
                  r"`paper` universe with 2 workers, index build included, against (\d+) s instead of (\d+) s", dataset_md)
    assert m, "docs/dataset.md no longer quotes dataset.json in the expected form"
    assert float(m[1]) == pytest.approx(memory["peak_rss_bytes"] / 2**30, abs=0.006)
    assert float(m[2]) == pytest.approx(index["peak_rss_bytes"] / 2**30, abs=0.006)
    assert int(m[3]) == round(index["seconds"]) and int(m[4]) == round(memory["seconds"])
    m = re.search(r"`paper` preset: ([\d.]+) GiB peak with 2 workers, index build included",
                  _flat((ROOT / "docs" / "scale.md").read_text()))
    assert m and float(m[1]) == pytest.approx(index["peak_rss_bytes"] / 2**30, abs=0.006)


def test_synth_workers_figures_match_the_paper_record():
    """README and docs/synth.md quote synth-paper.json: wall times per worker count, peak, identity."""
    rec = _json("synth-paper.json")
    runs = {r["workers"]: r for r in rec["runs"]}
    assert rec["identical_across_workers"]
    readme = _flat((ROOT / "README.md").read_text())
    m = re.search(r"in ([\d.]+) s with 2 workers against ([\d.]+) s with 1, peak ([\d.]+) GiB", readme)
    assert m, "README no longer quotes synth-paper.json in the expected form"
    assert float(m[1]) == pytest.approx(runs[2]["wall_seconds"], abs=0.051)
    assert float(m[2]) == pytest.approx(runs[1]["wall_seconds"], abs=0.051)
    assert float(m[3]) == pytest.approx(runs[2]["peak_rss_bytes"] / 2**30, abs=0.006)
    doc = _flat((ROOT / "docs" / "synth.md").read_text())
    m = re.search(r"in ([\d.]+) s with `--workers 2` and ([\d.]+) s with `--workers 1` \(([\d.]+)×\) in the same "
                  r"run, peak RSS of the whole process tree ([\d.]+) and ([\d.]+) GiB", doc)
    assert m, "docs/synth.md no longer quotes synth-paper.json in the expected form"
    assert float(m[1]) == pytest.approx(runs[2]["wall_seconds"], abs=0.051)
    assert float(m[2]) == pytest.approx(runs[1]["wall_seconds"], abs=0.051)
    assert float(m[3]) == pytest.approx(runs[1]["wall_seconds"] / runs[2]["wall_seconds"], abs=0.006)
    assert float(m[4]) == pytest.approx(runs[2]["peak_rss_bytes"] / 2**30, abs=0.006)
    assert float(m[5]) == pytest.approx(runs[1]["peak_rss_bytes"] / 2**30, abs=0.006)


def test_bench_readme_targets_match_kernels_json():
    kernels = _json("kernels.json")
    targets = _section((ROOT / "bench" / "README.md").read_text(), "## Targets against the recorded run")
    checked = 0
    for bullet in re.split(r"\n- ", targets)[1:]:
        bullet = " ".join(bullet.split())
        case = re.match(r"`(\w+)`", bullet).group(1)
        method, threads = TARGET_CASES[case]
        for dataset, exp, quoted, rest in re.findall(
                r"(random|clustered) 1e(\d+): ([\d,.]+)×((?:(?!(?:random|clustered) 1e)[^;])*)",
                bullet):
            got = _ratio(kernels, dataset, 10 ** int(exp), case, method, threads)
            assert _agrees(_number(quoted), got), (case, dataset, exp, got)
            spatial = re.search(r"([\d,.]+)× in spatial order", rest)
            if spatial:
                got = _ratio(kernels, f"{dataset}/sfc", 10 ** int(exp), case, method, threads)
                assert _agrees(_number(spatial.group(1)), got), (case, dataset, exp, got)
            checked += 1
        if "**not met**" not in bullet:
            # a target said to be met is met by every figure quoted for it
            goal = float(re.search(r"≥ ([\d.]+)×", bullet).group(1))
            for dataset, exp in re.findall(r"(random|clustered) 1e(\d+)", bullet):
                assert _ratio(kernels, dataset, 10 ** int(exp), case, method, threads) >= goal
    assert checked >= 8


def test_synth_docs_match_the_recorded_small_run():
    run = _json("synth-small.json")
    doc = (ROOT / "docs" / "synth.md").read_text()
    m = re.search(r"wall time ([\d.]+) s, peak RSS ([\d.]+) GiB, ([\d.]+) M particles, "
                  r"snapshot ([\d.]+) GB", doc)
    assert m, "docs/synth.md no longer quotes the recorded small run in the expected form"
    assert float(m.group(1)) == pytest.approx(run["wall_seconds"], abs=0.51)
    assert float(m.group(2)) == pytest.approx(run["peak_rss_bytes"] / 2**30, abs=0.006)
    assert float(m.group(3)) == pytest.approx(sum(run["n_particles"].values()) / 1e6, abs=0.051)
    assert float(m.group(4)) == pytest.approx(run["file_bytes"]["snapshot.hdf5"] / 1e9, abs=0.006)
    offsets = run["literature_offsets"]
    rows = re.findall(r"^\| `(\w+)`[^|]*\|(.*)$", _section(doc, "## Against the literature"),
                      flags=re.M)
    assert {key for key, _ in rows} == set(offsets)
    for key, rest in rows:
        quoted = [float(x) for x in re.findall(r"×([\d.]+)", rest)]
        recorded = [offsets[key][r]["ratio"] for r in ("1e14-3e14", "sample", "groups_1e13-1e14")]
        assert quoted == pytest.approx(recorded, abs=0.0051), key


def _paragraph(text: str, marker: str) -> str:
    """The blank-line-separated paragraph of ``text`` that contains ``marker``."""
    return next(p for p in text.split("\n\n") if marker in p)


@pytest.mark.parametrize("record", ["distributed", "distributed-paper"])
def test_scale_docs_match_the_recorded_distributed_run(record):
    """docs/scale.md quotes bench/results/distributed.json (small universe) and
    distributed-paper.json (paper preset): memory per worker, images/s, identity."""
    result = _json(f"{record}.json")
    doc = " ".join(_paragraph((ROOT / "docs" / "scale.md").read_text(), f"`bench/results/{record}.txt`").split())
    rows = {r["workers"]: r for r in result["rows"] if r["peak_rss_mb_per_worker"]}
    m = re.search(r"peak resident memory (\d+) MB for the single worker and (\d+)/(\d+) MB for each of two workers",
                  doc)
    assert m, f"docs/scale.md no longer quotes {record}.json in the expected form"
    assert int(m[1]) == round(rows[1]["peak_rss_mb_per_worker"][0])
    assert [int(m[2]), int(m[3])] == [round(p) for p in rows[2]["peak_rss_mb_per_worker"]]
    m = re.search(r"([\d.]+) images/s on one worker and ([\d.]+) on two", doc)
    assert m and _agrees(float(m[1]), rows[1]["images_per_second"]) and _agrees(float(m[2]), rows[2]["images_per_second"])
    assert result["identical_images"]
    if record == "distributed-paper":
        assert f"all {rows[1]['images']} images" in doc and "every image identical" in doc
        assert rows[2]["images"] == rows[1]["images"] == result["reference"]["images"]
        m = re.search(r"--types (\S+)` .*? took (\d+) s, peaked at ([\d.]+) GiB and wrote ([\d.]+) GB", doc)
        assert m, "docs/scale.md no longer quotes the recorded cmc index run in the expected form"
        assert m[1] == ",".join(result["indexed_types"]) and f"--types {m[1]}" in result["index"]["command"]
        assert int(m[2]) == round(result["index"]["seconds"])
        assert float(m[3]) == pytest.approx(result["index"]["peak_rss_mb"] / 1024, abs=0.006)
        assert float(m[4]) == pytest.approx(result["indexed_bytes"] / 1e9, abs=0.006)
        m = re.search(r"hashes the ([\d.]+) GB input", doc)
        assert m and float(m[1]) == pytest.approx(result["indexed_bytes"] / 1e9, abs=0.051)
        m = re.search(r"a snapshot of (\d+) M particles; .*? load average of ([\d.]+)–([\d.]+)\)", doc)
        assert m and int(m[1]) == round(sum(result["universe"]["n_particles"].values()) / 1e6)
        loads = [x for r in result["rows"] for x in r["load_average_1min"]]
        assert [float(m[2]), float(m[3])] == [round(min(loads), 1), round(max(loads), 1)]
        # the serial build's memory is the dataset benchmark's in-memory run of the same universe
        serial = _json("dataset.json")
        assert serial["universe"]["n_particles"] == result["universe"]["n_particles"]
        memory = next(r for r in serial["rows"] if r["source"] == "memory" and r["workers"] == 2)
        m = re.search(r"6400 images, peak memory ([\d.]+) GiB \(`bench/results/dataset.txt`", doc)
        assert m and float(m[1]) == pytest.approx(memory["peak_rss_bytes"] / 2**30, abs=0.0051)
        m = re.search(r"the four channels read: (\d+) M particles\)", doc)
        assert m and int(m[1]) == round(sum(result["indexed_types"].values()) / 1e6)


def test_evaluation_docs_match_the_recorded_star_baseline_diagnosis():
    """docs/evaluation.md's "What limits the Star baseline" quotes bench/results/star_baseline.json."""
    r = _json("star_baseline.json")
    doc = _section((ROOT / "docs" / "evaluation.md").read_text(), "### What limits the Star baseline")
    flat = " ".join(doc.split())

    def quoted(pattern: str) -> list[float]:
        m = re.search(pattern, flat)
        assert m, f"docs/evaluation.md no longer quotes {pattern!r}"
        return [float(g) for g in m.groups()]

    est = r["estimator"]
    paper, literal = est["paper"], est["paper-literal"]
    assert quoted(r"predicting the mean gives σ = (\d+\.\d+) dex")[0] == pytest.approx(r["no_information_sigma_dex"], abs=5e-4)
    m = re.search(r"chooses (\S+ ?(?:Mpc)?), slope β = (\d+\.\d+), and scatters by σ = (\d+\.\d+) dex", flat)
    assert m, "docs/evaluation.md no longer quotes the chosen aperture"
    beta, sigma = float(m[2]), float(m[3])
    assert m[1] == paper["aperture"] and beta == pytest.approx(paper["slope"], abs=5e-3)
    assert sigma == pytest.approx(paper["sigma_dex"], abs=5e-4)
    assert est["noise-free"]["sigma_dex"] == pytest.approx(paper["sigma_dex"], abs=5e-4)
    m = re.search(r"picks (\S+ ?(?:Mpc)?), β = (\d+\.\d+), and σ = (\d+\.\d+) dex", flat)
    assert m, "docs/evaluation.md no longer quotes the literal reading's aperture"
    beta, sigma = float(m[2]), float(m[3])
    assert m[1] == literal["aperture"] and beta == pytest.approx(literal["slope"], abs=5e-3)
    assert sigma == pytest.approx(literal["sigma_dex"], abs=5e-4)
    assert quoted(r"regression on all eleven apertures ≤ 0\.35 Mpc at once reaches (\d+\.\d+)")[0] == pytest.approx(
        r["multi_aperture_le_0.35Mpc"]["sigma_dex"], abs=5e-4)
    scaled = {s["fraction_r200"]: s for s in r["scaled"]}
    assert quoted(r"would reach (\d+\.\d+) \(f = 0\.2\)")[0] == pytest.approx(scaled[0.2]["oracle_sigma_dex"], abs=5e-4)
    sc2, sc3 = quoted(r"amplifies its error: (\d+\.\d+) \(f = 0\.2\) and (\d+\.\d+) \(f = 0\.3\)")
    assert sc2 == pytest.approx(scaled[0.2]["self_consistent_sigma_dex"], abs=5e-3)
    assert sc3 == pytest.approx(scaled[0.3]["self_consistent_sigma_dex"], abs=5e-3)
    floor = r["floor_3d"]["quantities"]
    assert quoted(r"scatters by (\d+\.\d+) dex \(all stars")[0] == pytest.approx(
        floor["BCG + ICL + satellites (all)"]["sigma_dex"], abs=5e-4)
    sat, n_sat, bcg = quoted(r"(\d+\.\d+) \(satellites alone; (\d+\.\d+) their number\) and (\d+\.\d+) \(BCG \+ ICL alone\)")
    assert sat == pytest.approx(floor["satellites (all, to 2 R200)"]["sigma_dex"], abs=5e-3)
    assert n_sat == pytest.approx(floor["N satellites"]["sigma_dex"], abs=5e-3)
    assert bcg == pytest.approx(floor["BCG + ICL"]["sigma_dex"], abs=5e-3)
    assert sc2 > paper["sigma_dex"] and paper["slope"] > 0


def test_scale_docs_match_the_recorded_prediction_run():
    """docs/scale.md and bench/README.md quote bench/results/predict_dask.json: cutouts/s per variant."""
    result = _json("predict_dask.json")
    best = {k: max(r["cutouts_per_second"] for r in runs) for k, runs in result["runs"].items()}
    doc = (ROOT / "docs" / "scale.md").read_text()
    m = re.search(r"([\d,]+) cutouts/s serially, ([\d,]+) on a LocalCluster of one worker and\s+([\d,]+) on two",
                  doc)
    assert m, "docs/scale.md no longer quotes the recorded prediction run in the expected form"
    assert [round(_number(g)) for g in m.groups()] == [round(best[k]) for k in ("serial", "local:1", "local:2")]
    bench = (ROOT / "bench" / "README.md").read_text()
    m = re.search(r"serial ([\d,]+) cutouts/s, LocalCluster of\s+one and two workers ([\d,]+) and ([\d,]+)", bench)
    assert m and [round(_number(g)) for g in m.groups()] == [round(best[k]) for k in ("serial", "local:1", "local:2")]
    assert all(result["tables_identical_to_serial"].values())


def test_synth_docs_match_the_recorded_paper_relations():
    """docs/synth.md quotes bench/results/synth-relations-paper.json: time, memory, every offset."""
    run = _json("synth-relations-paper.json")
    doc = _section((ROOT / "docs" / "synth.md").read_text(), "## The `paper` preset against the literature")
    m = re.search(r"wall time ([\d.]+) s, peak RSS ([\d.]+) GiB", doc)
    assert m, "docs/synth.md no longer quotes the recorded paper relations run in the expected form"
    assert float(m.group(1)) == pytest.approx(run["wall_seconds"], abs=0.51)
    assert float(m.group(2)) == pytest.approx(run["peak_rss_bytes"] / 2**30, abs=0.006)
    offsets = run["literature_offsets"]
    rows = re.findall(r"^\| `(\w+)`[^|]*\|(.*)$", doc, flags=re.M)
    assert {key for key, _ in rows} == set(offsets)
    for key, rest in rows:
        quoted = [float(x) for x in re.findall(r"×([\d.]+)", rest)]
        recorded = [offsets[key][r]["ratio"] for r in ("1e14-3e14", "sample", "groups_1e13-1e14")]
        assert quoted == pytest.approx(recorded, abs=0.0051), key


def test_halo_finding_docs_match_the_recorded_paper_run():
    """README.md and docs/scale.md quote bench/results/halos_paper.json: time, memory, recovery."""
    run = _json("halos_paper.json")
    c = run["comparison"]
    for name in ("README.md", "docs/scale.md"):
        doc = " ".join((ROOT / name).read_text().split())
        m = re.search(r"([\d.]+) min and ([\d.]+) GiB", doc) if name == "README.md" else \
            re.search(r"wall time \d+ s \(([\d.]+) min\), peak RSS ([\d.]+) GiB", doc)
        assert m, f"{name} no longer quotes the recorded paper-preset halo run in the expected form"
        assert float(m[1]) == pytest.approx(run["wall_seconds"] / 60, abs=0.051)
        assert float(m[2]) == pytest.approx(run["peak_rss_bytes"] / 2**30, abs=0.0051)
        m = re.search(r"([\d.]+) % of the 500 most massive" if name == "README.md" else
                      r"500 most massive true haloes \([^)]*\): \d+ \(([\d.]+) %\)", doc)
        assert m and float(m[1]) == pytest.approx(100 * c["matched_fraction"], abs=0.051)
        m = re.search(r"scatter ([\d.]+) dex" if name == "README.md" else r"standard\s+deviation ([\d.]+) dex", doc)
        assert m and float(m[1]) == pytest.approx(c["std_log_m200_ratio"], abs=0.00051)
    assert run["peak_rss_bytes"] < 16 * 2**30 and run["exit_status"] == 0


def _card_rows(name: str) -> dict[str, list[str]]:
    """Table rows of models/<name>.md by estimator label (cells stripped)."""
    rows = {}
    for line in (ROOT / "models" / f"{name}.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| estimator"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


@pytest.mark.skipif(not (ROOT / "models" / "multi.md").is_file(), reason="no shipped models")
def test_readme_shipped_models_table_matches_the_cards():
    """README's "Shipped models" table quotes each model card's network row, its coverage and the best
    baseline of each kind (image + z, image only) among the card's rows."""
    doc = _section((ROOT / "README.md").read_text(), "## Shipped models")
    seen = 0
    for line in doc.splitlines():
        m = re.match(r"\| \[`(\w+)`\]\(models/\1\.md\) \| ([\d.]+ ± [\d.]+) \| ([\d.]+) \| ([+-][\d.]+ ± [\d.]+) \| "
                     r"([\d.]+) / ([\d.]+) \| (?:the best one: )?(baseline [^|]+?) \| ([\d.]+ ± [\d.]+) \| "
                     r"(?:the best one: )?(baseline [^|]+?) \| ([\d.]+ ± [\d.]+) \|", line)
        if not m:
            continue
        seen += 1
        card = _card_rows(m[1])
        net = next(v for k, v in card.items() if k.startswith(f"{m[1]} network (this model"))
        assert [m[2], m[3], m[4]] == [net[8], net[7], net[5]]
        text = (ROOT / "models" / f"{m[1]}.md").read_text()
        assert f"±1σ holds {m[5]} ±" in text and f"±2σ {m[6]} ±" in text
        for label, sigma, given in ((m[7], m[8], "image + z"), (m[9], m[10], "image only")):
            assert card[label][8] == sigma and label.endswith(f"{given})")
            best = min(float(r[8].split(" ± ")[0]) for k, r in card.items()
                       if k.startswith("baseline") and k.endswith(f"{given})"))
            assert float(sigma.split(" ± ")[0]) == best
    assert seen == 5

def test_readme_demo_table_matches_the_recorded_demo_run():
    """README's "What the main job does" quotes bench/results/demo_small.json (cmc demo --out demo-out)."""
    run = _json("demo_small.json")
    doc = _section((ROOT / "README.md").read_text(), "## Quick start")
    seen = 0
    for label, t in run["rows"].items():
        m = re.search(rf"^  {re.escape(label)}\s+(\d+)\s+([+-][\d.]+)\s+([\d.]+)\s+([\d.]+)$", doc, re.M)
        assert m, f"README no longer quotes the demo row {label!r}"
        assert int(m[1]) == t["n"] and float(m[2]) == pytest.approx(t["log_bias"], abs=5e-5)
        assert float(m[3]) == pytest.approx(t["rms_pct"], abs=0.05) and float(m[4]) == pytest.approx(t["scatter_dex"], abs=5e-4)
        seen += 1
    assert seen == len(run["rows"]) == 13   # five networks, four baselines given z, four not
    minutes, seconds = run["wall"].split(":")
    assert f"{int(minutes)} min {round(float(seconds))} s" in " ".join(doc.split())
    assert f"{run['peak_rss_mb'] / 1024:.1f} GB peak" in doc


def test_readme_quotes_the_centres_benchmark():
    """README's centres sentence quotes centres.json (1 thread each, equal rounds, medians)."""
    doc = " ".join(_section((ROOT / "README.md").read_text(), "## Benchmarks").split())
    rec = _json("centres.json")
    assert rec.get("commit") and rec.get("repeat", 0) >= 3 and rec.get("warmup") == 1, "regenerate centres.json"
    centres = _json("centres.json")["rows"]
    m = re.search(r"is ([\d.]+)×, ([\d.]+)× and ([\d.]+)× faster than the same algorithm in NumPy", doc)
    assert m and [float(g) for g in m.groups()] == [round(r["ratio"]) for r in centres]
    assert all(r["max_centre_difference_mpc"] < 1e-9 for r in centres)


def test_train_docs_quote_the_recorded_recipe_campaign():
    """docs/train.md's recipe table quotes bench/results/recipe.json, row by row."""
    rec = _json("recipe.json")
    doc = (ROOT / "docs" / "train.md").read_text()
    for name, run in rec["runs"].items():
        t = run["table2"]
        m = re.search(rf"^\| `{re.escape(name)}` \| [^|]+ \| ([\d.]+) ± ([\d.]+) \| ([\d.]+) \| (\d+)/(\d+) \|", doc, re.M)
        assert m, f"docs/train.md no longer quotes the run {name}"
        assert float(m[1]) == pytest.approx(t["scatter_dex"], abs=5e-5)
        assert float(m[2]) == pytest.approx(t["scatter_dex_se"], abs=5e-5)
        assert float(m[3]) == pytest.approx(run["best_val_rms_dex"], abs=5e-5)
        assert (int(m[4]), int(m[5])) == (run["best_epoch"], run["epochs_done"])
    for name, b in rec["baselines"].items():
        t = b["table2"]
        assert f"| {t['scatter_dex']:.4f} ± {t['scatter_dex_se']:.4f} |" in doc, name


def test_readme_quotes_the_recorded_floor():
    """README's shipped-models paragraph quotes bench/results/floor.json: the averaged aperture and the floors."""
    rec = _json("floor.json")
    doc = " ".join(_section((ROOT / "README.md").read_text(), "## Shipped models").split())
    m = re.search(r"four projections \(([\d.]+) dex\).*?true 3D Y500 scatters by ([\d.]+) dex, on Y500, M_gas, T_X and "
                  r"the stellar masses together by ([\d.]+)", doc)
    assert m, "README no longer quotes the floor"
    assert float(m[1]) == pytest.approx(rec["aperture_four_projections"]["scatter_dex"], abs=5e-5)
    assert float(m[2]) == pytest.approx(rec["floor_y500"]["scatter_dex"], abs=5e-5)
    assert float(m[3]) == pytest.approx(rec["floor_all"]["scatter_dex"], abs=5e-5)


def test_tour_outputs_come_from_the_recorded_run():
    """Every output line of docs/tour.md's console block is a line of bench/results/tour.txt."""
    record = set((ROOT / "bench" / "results" / "tour.txt").read_text().splitlines())
    doc = (ROOT / "docs" / "tour.md").read_text()
    block = doc[doc.index("```console") + len("```console"):doc.index("```", doc.index("```console") + 10)]
    outputs = [line for line in block.strip().splitlines() if not line.startswith(("$ ", "      "))]
    assert len(outputs) >= 10
    missing = [line for line in outputs if line not in record]
    assert missing == []


# ----------------------------------------------------------------- issue 22: fair records
def _flat(text: str) -> str:
    return " ".join(text.split())


def _check_context(record: dict, name: str) -> None:
    """A record states how and where it was made: command line, commit, machine, load, dates."""
    for key in ("argv", "command", "commit", "machine", "date_utc_start", "date_utc_end",
                "load_average_before", "load_average_after"):
        assert key in record, f"{name} lacks {key!r}: regenerate it with the current benchmark"
    assert record["commit"], f"{name} was not made from a git checkout"
    for key in ("cpu_model", "logical_cores", "usable_cores", "memory_bytes"):
        assert record["machine"].get(key), (name, key)


def test_kernels_record_compares_on_equal_terms():
    """kernels.json (``python bench/kernels.py --sizes 1e6 1e7 --big``): every ratio at equal threads,
    1 vs 1 and N vs N, the same repeats after a warm-up on both sides, the ratio the recorded medians'."""
    kernels = _json("kernels.json")
    _check_context(kernels, "kernels.json")
    setup = kernels["setup"]
    assert setup["warmup"] == 1 and setup["repeat"] >= 3 and 1 in setup["threads"], setup
    assert setup["positions_dtype"] == "float32" and setup.get("baselines")
    assert {r["n"] for r in kernels["rows"]} >= {10**7, 10**8}, "the README's table needs 1e7 and 1e8 (--big)"
    rows = kernels["rows"]
    for r in rows:
        if r["role"] == "once":
            continue
        assert r["repeat"] == setup["repeat"] == len(r["seconds_all"]) and r["warmup"] == 1, r
    measured = [r for r in rows if r["role"] == "measured" and r["ratio"] is not None]
    assert measured
    for r in measured:
        base = [b for b in rows if b["role"] == "baseline" and (b["dataset"], b["n"], b["case"], b["method"],
                b["threads"]) == (r["dataset"], r["n"], r["case"], r["baseline"], r["baseline_threads"])]
        assert len(base) == 1 and r["baseline_threads"] <= r["threads"], r
        assert r["ratio"] == pytest.approx(base[0]["seconds"] / r["seconds"], rel=1e-9)
    for case, method in (("ngp", "cmc"), ("cic", "cmc"), ("index", "project: with index"),
                         ("index", "select_sphere: with index")):
        ones = [r for r in measured if (r["case"], r["method"], r["threads"]) == (case, method, 1)]
        assert ones and all(r["baseline_threads"] == 1 for r in ones), (case, method)
    if kernels["setup"].get("swiftsimio"):
        assert any(r["case"] == "sph" and r["ratio"] is not None for r in measured)


def test_readme_kernel_notes_match_kernels_json():
    """README: "SPH conserves mass to ≤ X; the index takes Y bytes per particle"."""
    kernels = _json("kernels.json")
    doc = _flat(_section((ROOT / "README.md").read_text(), "## Benchmarks"))
    m = re.search(r"SPH conserves mass to ≤ ([\d.e+-]+); the index takes ([\d.]+) bytes per particle", doc)
    assert m, "README no longer quotes the mass conservation and the index size"
    errs = [r["mass_conservation_rel_err"] for r in kernels["rows"] if "mass_conservation_rel_err" in r]
    assert errs and max(errs) <= float(m[1])
    sizes = {round(r["bytes_per_particle"], 1) for r in kernels["rows"] if "bytes_per_particle" in r}
    assert sizes == {float(m[2])}


def test_mask_scan_record_and_readme_quote_the_equally_built_baseline():
    """interpret.json (``python bench/interpret.py``) compares fairly, and README's mask-scan
    figures are its headline ratios, fast against brute-split, with the agreement."""
    rec = _json("interpret.json")
    _check_context(rec, "interpret.json")
    assert rec["repeat"] >= 3 and "brute-split" in rec["headline"], "regenerate interpret.json"
    rows = {(r["network"], r["method"]): r for r in rec["rows"]}
    for r in rec["rows"]:
        assert r["repeat"] == rec["repeat"] == len(r["seconds_all"]) and r["warmup"] == 1
        assert r["max_abs_diff_vs_brute_dex"] <= rec["tolerance_dex"]
    for net in {r["network"] for r in rec["rows"]}:
        fast, split = rows[(net, "fast")], rows[(net, "brute-split")]
        assert fast["speedup_vs_brute_split"] == pytest.approx(split["seconds"] / fast["seconds"], rel=1e-9)
    doc = _flat(_section((ROOT / "README.md").read_text(), "## Benchmarks"))
    m = re.search(r"Gaussian-mask scan (.*?)\(`bench/results/interpret.txt`", doc)
    assert m, "README no longer quotes the mask-scan record"
    quote = m[1]
    assert "split" in quote, "README must say the ratio is against the brute force through the same split graphs"
    m = re.search(r"([\d.]+)× \(single-channel\) and ([\d.]+)× \(four-channel\)", quote)
    assert m, "README no longer quotes the mask-scan ratios in the expected form"
    for quoted, net in zip(m.groups(), ("single", "multi")):
        assert float(quoted) == pytest.approx(rows[(net, "fast")]["speedup_vs_brute_split"], abs=0.0051)
    m = re.search(r"equal to ([\d.]+e-\d+) dex", quote)
    assert m, "README no longer quotes the scans' agreement"
    worst = max(r["max_abs_diff_vs_brute_dex"] for r in rec["rows"])
    assert float(m[1]) == pytest.approx(worst, rel=0.06)
    # "equals brute force to ~1e-6 dex" (README, interpret) and "1e-6 dex" (docs/interpret.md)
    assert 1e-7 < worst < 5e-6
    m = re.search(r"against the whole exported model scanned by brute force, ([\d.]+)× and ([\d.]+)×", doc)
    assert m and [float(m[1]), float(m[2])] == [round(rows[(n, "fast")]["speedup_vs_brute"], 2)
                                                for n in ("single", "multi")]
    # the counted arithmetic bound, README and docs/interpret.md
    single, multi = rows[("single", "fast")], rows[("multi", "fast")]
    assert multi["arithmetic_ratio"] == pytest.approx(single["arithmetic_ratio"], rel=1e-9)
    m = re.search(r"The windows do ([\d.]+)× less convolution arithmetic", doc)
    assert m and float(m[1]) == round(single["arithmetic_ratio"], 2)
    interp = _flat((ROOT / "docs" / "interpret.md").read_text())
    m = re.search(r"does ([\d.]+) of the ([\d.]+) MFLOP of a single-channel network's convolutions per centre, "
                  r"([\d.]+)× less arithmetic", interp)
    assert m and [float(g) for g in m.groups()] == [round(single["conv_mflop_per_centre_fast"], 1),
                                                    round(single["conv_mflop_forward"], 1),
                                                    round(single["arithmetic_ratio"], 2)]
    m = re.search(r"the recorded gain over brute-split,\s+([\d.]+)× and ([\d.]+)×", interp)
    assert m and [float(m[1]), float(m[2])] == [round(single["speedup_vs_brute_split"], 2),
                                                round(multi["speedup_vs_brute_split"], 2)]


def test_readme_inference_figures_match_the_records():
    """README's inference bullet quotes inference.json (batch 64, the Predictor against Keras)."""
    inf = _json("inference.json")
    doc = _flat(_section((ROOT / "README.md").read_text(), "## Benchmarks"))
    row = {(e["engine"], e["threads"]): {r["batch"]: r for r in e["rows"]} for e in inf["engines"]}
    mflop = inf["network"]["mflop_per_image"]
    m = re.search(r"at batch 64: ([\d,]+) and ([\d,]+) images/s on 1 and 2 threads \(parallel efficiency (\d+) %\), "
                  r"([\d,]+) images per CPU-second on 1 thread, (\d+) % of NumPy's float32 matmul rate per "
                  r"CPU-second and ([\d.]+)× Keras on the same model through a compiled `tf.function`", doc)
    assert m, "README no longer quotes the inference record in the expected form"
    one, two, keras = row[("ort", 1)][64], row[("ort", 2)][64], row[("keras", 1)][64]
    assert round(_number(m[1])) == round(one["images_per_second"])
    assert round(_number(m[2])) == round(two["images_per_second"])
    assert int(m[3]) == round(100 * two["images_per_second"] / (2 * one["images_per_second"]))
    assert round(_number(m[4])) == round(one["images_per_cpu_second"])
    assert int(m[5]) == round(100 * one["images_per_cpu_second"] * mflop / 1e3
                              / inf["matmul"]["1"]["gflops_per_cpu_second"])
    assert float(m[6]) == pytest.approx(one["images_per_cpu_second"] / keras["images_per_cpu_second"], abs=0.0051)
    read = inf["read_per_file"]
    m = re.search(r"reading and checking a FITS cutout ([\d.]+)× faster than astropy\.io\.fits with the same "
                  r"per-header cache \((\d+) µs against (\d+) µs\), ([\d.]+)× without it", doc)
    assert m, "README no longer quotes the FITS reading figures in the expected form"
    assert float(m[1]) == pytest.approx(read["speedup"], abs=0.051)
    assert int(m[2]) == round(read["us_per_file"]["fast"]) and int(m[3]) == round(read["us_per_file"]["astropy"])
    assert float(m[4]) == pytest.approx(read["speedup_no_cache"], abs=0.051)
    e2e = {r["files"]: r for r in inf["end_to_end"]}
    m = re.search(r"`cmc predict` over 10⁴ and 10⁵ separate FITS files: ([\d,]+) and ([\d,]+) cutouts/s end to end, "
                  r"peak memory (\d+)[–-](\d+) MiB", doc)
    assert m, "README no longer quotes the end-to-end figures in the expected form"
    assert round(_number(m[1])) == round(e2e[10_000]["cutouts_per_second"])
    assert round(_number(m[2])) == round(e2e[100_000]["cutouts_per_second"])
    peaks = [r["peak_rss_mib"] for r in inf["end_to_end"]]
    assert int(m[3]) == round(min(peaks)) and int(m[4]) == round(max(peaks))


def test_gpu_training_figures_match_the_record():
    """README quotes gpu_train_check.json twice: training images/s and the bit-identical runs."""
    rec = _json("gpu_train_check.json")
    rate = {t["network"]: round(t["cmc_images_per_s"]) for t in rec["throughput"]}
    doc = _flat((ROOT / "README.md").read_text())
    found = re.findall(r"([\d,]+) (?:\()?single-channel(?:\))? and ([\d,]+) (?:\()?multi-channel(?:\))? "
                       r"training images/s", doc)
    assert len(found) == 2, found
    for single, multi in found:
        assert [round(_number(single)), round(_number(multi))] == [rate["single"], rate["multi"]]
    # the Keras fit rate beside it, both times, and the ratio
    fit = {t["network"]: round(t["keras_fit_images_per_s"]) for t in rec["throughput"]}
    ratio = {t["network"]: 1 / t["ratio_keras_over_cmc_time"] for t in rec["throughput"]}
    found = re.findall(r"([\d,]+) and ([\d,]+)\)? through Keras `fit`", doc) + \
        re.findall(r"Keras `fit` on the same arrays \(([\d,]+) and ([\d,]+)\)", doc)
    assert len(found) == 2, found
    for single, multi in found:
        assert [round(_number(single)), round(_number(multi))] == [fit["single"], fit["multi"]]
    ratios = re.findall(r"([\d.]+)× and ([\d.]+)× (?:slower than Keras `fit`|faster\))", doc)
    assert len(ratios) == 2, ratios
    for m in ratios:
        assert [float(m[0]), float(m[1])] == [round(ratio["single"], 1), round(ratio["multi"], 1)]
    assert rec["same_seed_bit_identical"] and rec["resumed_bit_identical"]


def test_training_times_and_epochs_match_models_training_json():
    """README, models/README.md and the cards quote models_training.json: minutes, epochs, losses."""
    rec = _json("models_training.json")
    runs = rec["runs"]
    readme = _flat((ROOT / "README.md").read_text())
    m = re.search(r"the five networks train in (\d+) minutes on 2 cores \(`bench/results/models_training.txt`\)", readme)
    assert m and int(m[1]) == round(rec["total_minutes"])
    models = _flat((ROOT / "models" / "README.md").read_text())
    m = re.search(r"validation rms ([\d.]+) against ([\d.]+) dex", models)
    assert m and float(m[1]) == pytest.approx(runs["multi"]["fusion"]["validation_rms_dex"], abs=5e-5)
    assert float(m[2]) == pytest.approx(runs["multi-joint"]["best_val_rms_dex"], abs=5e-5)
    m = re.search(r"Training took ([\d.]+) minutes for the four networks", models)
    assert m and float(m[1]) == pytest.approx(rec["total_minutes"], abs=0.051)
    for name in ("Star", "Fxs", "Fxb", "Ypar"):
        card = _flat((ROOT / "models" / f"{name}.md").read_text())
        run = runs[name]
        m = re.search(r"(\d+) epochs \(weights of epoch (\d+), the lowest validation loss ([\d.]+)\)", card)
        assert m, name
        assert (int(m[1]), int(m[2])) == (run["epochs_run"], run["best_epoch"])
        assert float(m[3]) == pytest.approx(run["history"]["val_loss"][run["best_epoch"] - 1], abs=5e-6)
        m = re.search(r"wall time: ([\d.]+) min", card)
        assert m and float(m[1]) == pytest.approx(run["seconds"] / 60, abs=0.051), name
        m = re.search(r"(\d+) training and (\d+) validation images", card)
        assert m and int(m[1]) == run["n_train"], name


@pytest.mark.skipif(not (ROOT / "models" / "multi.md").is_file(), reason="no shipped models")
def test_model_cards_match_the_recorded_check():
    """Every card's Test-metrics table is the one ``python bench/models_check.py models-work/paper.h5``
    wrote again from ``cmc evaluate`` (models_cards_check.json), row for row."""
    rec = _json("models_cards_check.json")
    for name in ("Star", "Fxs", "Fxb", "Ypar", "multi"):
        text = (ROOT / "models" / f"{name}.md").read_text()
        rows = [line for line in text.splitlines()
                if line.startswith("| baseline ") or (line.startswith("| ") and "(this model" in line)]
        got = rec["models"][name]
        assert got["card_matches"], name
        assert rows == got["table_rows"], f"models/{name}.md differs from models_cards_check.json: rerun the check"


def test_halo_finding_details_match_the_recorded_paper_run():
    """docs/scale.md's paragraph on the paper-preset halo run, and README's particle counts,
    quote halos_paper.json (and distributed-paper.json for the snapshot's total)."""
    run = _json("halos_paper.json")
    c = run["comparison"]
    doc = _flat(_paragraph((ROOT / "docs" / "scale.md").read_text(), "On the 2-core, 24 GB machine"))
    m = re.search(r"wall time (\d+) s", doc)
    assert m and int(m[1]) == round(run["wall_seconds"])
    m = re.search(r"([\d,]+) haloes \(of ([\d,]+) groups of ≥ 32 particles holding ([\d.]+) M particles\)", doc)
    assert m, "docs/scale.md no longer quotes the found haloes in the expected form"
    assert _number(m[1]) == run["n_halos"]
    groups = re.search(r"(\d+) groups of >= 32 particles \((\d+) particles\)", " ".join(s[1] for s in run["stages"]))
    assert _number(m[2]) == int(groups[1]) and float(m[3]) == pytest.approx(int(groups[2]) / 1e6, abs=0.051)
    t = {text.split(" ")[0]: sec for sec, text in run["stages"]}
    groups_key = groups[1]
    stages = [t[groups_key] - t["friends-of-friends"], t["cell"] - t[groups_key], t["spherical"] - t["cell"],
              t["done"] - t["spherical"], run["wall_seconds"] - t["done"]]
    m = re.search(r"reading ~(\d+) s, friends-of-friends (\d+) s, shrinking-sphere centres (\d+) s, cell indexes "
                  r"(\d+) s, spherical overdensity (\d+) s", doc)
    assert m
    quoted = [int(g) for g in m.groups()]
    assert quoted[1:] == [round(x) for x in stages[:4]]
    assert abs(quoted[0] - stages[4]) <= 2
    m = re.search(r"\(([\d.e]+)–([\d.e]+) M☉\): (\d+) \(", doc)
    assert m and float(m[1]) == pytest.approx(c["true_m200_range_msun"][0], rel=0.01)
    assert float(m[2]) == pytest.approx(c["true_m200_range_msun"][1], rel=0.001) and int(m[3]) == c["n_matched"]
    m = re.search(r"median (-?[\d.]+) dex, standard deviation [\d.]+ dex and 1\.4826 MAD ([\d.]+) dex, "
                  r"([\d.]+) % within 3 %, and the median centre offset is ([\d.]+) R200", doc)
    assert m, "docs/scale.md no longer quotes the halo comparison in the expected form"
    assert float(m[1]) == pytest.approx(c["median_log_m200_ratio"], abs=5e-5)
    assert float(m[2]) == pytest.approx(c["robust_scatter_log_m200_ratio"], abs=5e-5)
    assert float(m[3]) == pytest.approx(100 * c["fraction_within_3pc"], abs=0.051)
    assert float(m[4]) == pytest.approx(c["median_centre_offset_r200"], abs=5e-5)
    unmatched = _flat(_paragraph((ROOT / "docs" / "scale.md").read_text(), "unmatched haloes come from"))
    m = re.search(r"The (\d+) unmatched haloes", unmatched)
    assert m and int(m[1]) == len(c["unmatched"]) == c["n_true_compared"] - c["n_matched"]
    m = re.search(r"above ([\d.e]+) M☉ within ([\d.]+) Mpc\)", unmatched)
    assert m and float(m[1]) == c["neighbour_mass_msun"] and float(m[2]) == c["neighbour_radius_mpc"]
    near = [u["neighbour"] for u in c["unmatched"] if u["neighbour"] is not None]
    words = {"One": 1, "Two": 2, "Three": 3, "Four": 4, "Five": 5, "Six": 6, "Seven": 7, "Eight": 8, "Nine": 9}
    m = re.search(r"(\w+) have none: .*? (\w+) have a massive found halo ([\d.]+)–([\d.]+) R200 away, with M200 "
                  r"between (−?[\d.]+) and (−?[\d.]+) dex of the true one", unmatched)
    assert m, "docs/scale.md no longer describes the unmatched haloes in the expected form"
    assert words[m[1]] == len(c["unmatched"]) - len(near) and words[m[2]] == len(near)
    assert [float(m[3]), float(m[4])] == [round(min(n["distance_r200"] for n in near), 2),
                                          round(max(n["distance_r200"] for n in near), 2)]
    assert [_number(m[5].replace("−", "-")), _number(m[6].replace("−", "-"))] == \
        [round(min(n["log_m200_ratio"] for n in near), 2), round(max(n["log_m200_ratio"] for n in near), 2)]
    one = _json("halos_unmatched.json")
    assert one["row"] in [u["row"] for u in c["unmatched"]]
    m = re.search(r"Checked for the ([\d.e]+) M☉ target at \(([\d.]+), ([\d.]+), ([\d.]+)\) Mpc, row (\d+) of the "
                  r"true catalogue \(`python bench/halos_unmatched.py .*? (\d+)`, `bench/results/halos_unmatched.txt`\): "
                  r"the found centre lies ([\d.]+) Mpc \(([\d.]+) R200\) away and holds ([\d.]+)× the dark-matter "
                  r"particles within 0\.1 Mpc and ([\d.]+)× within 0\.8 Mpc; SO about the true centre gives exactly the "
                  r"true M200 \(([\d.e]+) M☉\), about the found one ([\d.e]+) M☉", unmatched)
    assert m, "docs/scale.md no longer quotes halos_unmatched.json in the expected form"
    assert float(m[1]) == pytest.approx(one["true"]["m200_msun"], rel=0.001)
    assert [float(m[k]) for k in (2, 3, 4)] == [round(x, 2) for x in one["true"]["centre_mpc"]]
    assert int(m[5]) == int(m[6]) == one["row"]
    assert float(m[7]) == round(one["nearest_found"]["distance_mpc"], 2)
    assert float(m[8]) == round(one["nearest_found"]["distance_r200"], 2)
    counts = one["dm_counts_true_found"]
    assert float(m[9]) == round(counts["0.1"][1] / counts["0.1"][0], 1)
    assert float(m[10]) == round(counts["0.8"][1] / counts["0.8"][0], 1)
    assert float(m[11]) == pytest.approx(one["so_m200_msun"]["true_centre"], rel=0.001)
    assert one["so_m200_msun"]["true_centre"] == pytest.approx(one["true"]["m200_msun"], rel=1e-6)
    assert float(m[12]) == pytest.approx(one["so_m200_msun"]["found_centre"], rel=0.001)
    readme = _flat((ROOT / "README.md").read_text())
    m = re.search(r"\((\d+) M particles, ([\d.]+) M of them dark matter\)", readme)
    assert m, "README no longer quotes the paper preset's particles in the expected form"
    dm = re.search(r"on (\d+) dark-matter particles", run["stages"][0][1])
    assert float(m[2]) == pytest.approx(int(dm[1]) / 1e6, abs=0.051)
    universe = _json("distributed-paper.json")["universe"]["n_particles"]
    assert int(m[1]) == round(sum(universe.values()) / 1e6) and universe["dm"] == int(dm[1])


def test_small_universe_and_dataset_counts_match_their_records():
    """README's "150 clusters, 36 M particles" (synth-small.json), docs/scale.md's "small universe of 29 M particles" (distributed.json), and README's demo
    "under 3 minutes" (demo_small.json)."""
    small = _json("synth-small.json")
    readme = _flat((ROOT / "README.md").read_text())
    m = re.search(r"the `small` synthetic universe \((\d+) clusters, (\d+) M particles\)", readme)
    assert m and int(m[1]) == small["n_targets"]
    assert int(m[2]) == round(sum(small["n_particles"].values()) / 1e6)
    dist = _json("distributed.json")
    scale = _flat((ROOT / "docs" / "scale.md").read_text())
    m = re.search(r"`small` universe of (\d+) M particles", scale)
    assert m and int(m[1]) == round(sum(dist["universe"]["n_particles"].values()) / 1e6)
    m = re.search(r"`cmc demo` \(under (\d+) minutes on 2 cores", readme)
    assert m and _json("demo_small.json")["wall_seconds"] < 60 * int(m[1])


def test_paper_universe_index_and_model_sizes_match_their_records():
    """README's paper-preset particle counts (the tour's synth line, tour.json), docs/scale.md's
    small-universe `cmc index` run (distributed.json), models/README.md's file sizes (the files)."""
    line = next(x for x in _json("tour.json")["lines"] if "target clusters" in x)
    m = re.search(r"(\d+) target clusters, (\d+) gas, (\d+) dm, (\d+) stars particles", line)
    clusters, gas, dm, stars = (int(g) for g in m.groups())
    readme = _flat((ROOT / "README.md").read_text())
    q = re.search(r"`paper` \((\d+) clusters, (\d+) M particles: (\d+) M gas, (\d+) M dark matter, (\d+) M stars", readme)
    assert q, "README no longer quotes the paper preset's counts in the expected form"
    assert [int(g) for g in q.groups()] == [clusters, round((gas + dm + stars) / 1e6), round(gas / 1e6),
                                            round(dm / 1e6), round(stars / 1e6)]
    dist = _json("distributed.json")
    scale = _flat((ROOT / "docs" / "scale.md").read_text())
    m = re.search(r"`cmc index` took (\d+) s and wrote ([\d.]+) GB", scale)
    assert m and int(m[1]) == round(dist["index_seconds"])
    assert float(m[2]) == pytest.approx(dist["indexed_bytes"] / 1e9, abs=0.0051)
    if (ROOT / "models" / "multi.onnx").is_file():
        models = _flat((ROOT / "models" / "README.md").read_text())
        m = re.search(r"([\d.]+) MB per single-channel model, ([\d.]+) MB for `multi`", models)
        assert m
        for name in ("Star", "Fxs", "Fxb", "Ypar"):
            assert float(m[1]) == pytest.approx((ROOT / "models" / f"{name}.onnx").stat().st_size / 1e6, abs=0.051)
        assert float(m[2]) == pytest.approx((ROOT / "models" / "multi.onnx").stat().st_size / 1e6, abs=0.051)


def test_evaluation_docs_quote_the_recorded_star_apertures():
    """docs/evaluation.md's aperture figures (small, large, whole field, annuli) from star_baseline.json."""
    r = _json("star_baseline.json")
    ap = {a["aperture"]: a for a in r["apertures"]}
    doc = _flat(_section((ROOT / "docs" / "evaluation.md").read_text(), "### What limits the Star baseline"))
    m = re.search(r"σ = ([\d.]+)–([\d.]+) dex within 0\.01–0\.05 Mpc, falling steadily to ([\d.]+) at 0\.35 Mpc", doc)
    assert m, "docs/evaluation.md no longer quotes the small apertures in the expected form"
    small = [ap[f"{x} Mpc"]["paper"]["sigma_dex"] for x in ("0.01", "0.02", "0.03", "0.05")]
    assert [float(m[1]), float(m[2])] == [round(min(small), 2), round(max(small), 2)]
    assert float(m[3]) == pytest.approx(ap["0.35 Mpc"]["paper"]["sigma_dex"], abs=5e-4)
    m = re.search(r"0\.5 Mpc gives ([\d.]+) \(0\.35 Mpc: ([\d.]+) on the same (\d+) % of images\) and 0\.7 Mpc "
                  r"([\d.]+) \(([\d.]+); (\d+) %\); the whole square field gives ([\d.]+)", doc)
    assert m, "docs/evaluation.md no longer quotes the large apertures in the expected form"
    for (sigma, same, pct), key in zip(((m[1], m[2], m[3]), (m[4], m[5], m[6])), ("0.5 Mpc", "0.7 Mpc")):
        assert float(sigma) == pytest.approx(ap[key]["paper"]["sigma_dex"], abs=5e-4)
        assert float(same) == pytest.approx(ap[key]["paper_0.35Mpc_same_images"], abs=5e-4)
        assert int(pct) == round(100 * ap[key]["fraction_of_images"])
    assert float(m[7]) == pytest.approx(r["whole_field"]["paper"]["sigma_dex"], abs=5e-4)
    m = re.search(r"Annuli to 0\.35 Mpc without the BCG give ([\d.]+)", doc)
    assert m and all(float(m[1]) == pytest.approx(a["sigma_dex"], abs=5e-4) for a in r["annuli"][:2])


def test_scale_docs_quote_the_recorded_dask_fixed_costs():
    """docs/scale.md: one-cutout wall times and CPU ms per cutout of predict_dask.json."""
    rec = _json("predict_dask.json")
    fixed = rec["fixed_cost_one_cutout"]
    best = {k: max(runs, key=lambda x: x["cutouts_per_second"]) for k, runs in rec["runs"].items()}
    doc = _flat((ROOT / "docs" / "scale.md").read_text())
    m = re.search(r"A run on one cutout takes ([\d.]+) s serially and ([\d.]+) s and ([\d.]+) s with the cluster", doc)
    assert m and [float(g) for g in m.groups()] == [round(fixed[k]["seconds"], 2) for k in ("serial", "local:1", "local:2")]
    m = re.search(r"the Dask runs spend ([\d.]+) and ([\d.]+) CPU ms per cutout against ([\d.]+) for the serial run", doc)
    assert m and float(m[3]) == pytest.approx(best["serial"]["cpu_ms_per_cutout"], abs=0.0051)
    assert [float(m[1]), float(m[2])] == [pytest.approx(best[k]["cpu_ms_per_cutout"], abs=0.0051)
                                          for k in ("local:1", "local:2")]


def test_evaluation_docs_quote_the_recorded_star_noise_and_floor_details():
    """docs/evaluation.md: the noise against the signal, and the 3D floor's BCG figures (star_baseline.json)."""
    r = _json("star_baseline.json")
    est, floor = r["estimator"], r["floor_3d"]
    doc = _flat(_section((ROOT / "docs" / "evaluation.md").read_text(), "### What limits the Star baseline"))
    m = re.search(r"the `paper` noise in 0\.35 Mpc is ([\d.]+) % of the median signal", doc)
    assert m and float(m[1]) == pytest.approx(100 * est["paper"]["noise_rms_over_median_signal_0.35Mpc"], abs=0.0051)
    m = re.search(r"2\.14e11 M☉ per pixel, (\d+)× the median signal in 0\.35 Mpc", doc)
    assert m and int(m[1]) == round(est["paper-literal"]["noise_rms_over_median_signal_0.35Mpc"])
    m = re.search(r"i\.e\. ([\d.]+) dex in log M200 at fixed BCG \+ ICL mass", doc)
    assert m and float(m[1]) == pytest.approx(floor["quantities"]["BCG + ICL"]["sigma_dex"], abs=0.0051)
    m = re.search(r"median X / \(BCG \+ ICL\) = ([\d.]+)\) and only (\d+) % of the halo's stars are inside", doc)
    assert m and float(m[1]) == pytest.approx(floor["median_X0.35Mpc_over_BCG_ICL"], abs=0.0051)
    assert int(m[2]) == round(100 * floor["median_X0.35Mpc_over_all_stars"])
    m = re.search(r"([\d.]+) \(BCG \+ ICL \+ satellites drawn within R500\)", doc)
    assert m and float(m[1]) == pytest.approx(floor["quantities"]["BCG + ICL + satellites in R500 (drawn)"]["sigma_dex"],
                                              abs=5e-4)


def test_reproduce_docs_match_the_recorded_quick_run():
    """docs/reproduce.md quotes reproduce_quick.json: wall time, peak memory, the printed estimate."""
    rec = _json("reproduce_quick.json")
    assert rec.get("commit") and rec.get("load_average"), "regenerate reproduce_quick.json"
    assert len(rec["steps"]) == 23 and all(s["seconds"] > 0 for s in rec["steps"])
    doc = _flat((ROOT / "docs" / "reproduce.md").read_text())

    def minsec(seconds: float) -> str:
        m, s = divmod(round(seconds), 60)
        return f"{m} min {s} s"

    assert f"`quick` is sized for two idle CPU cores: {minsec(rec['wall_seconds'])} end to end" in doc
    m = re.search(r"peak memory ([\d.]+) GiB of the process tree \(`bench/results/reproduce_quick.txt`", doc)
    assert m and float(m[1]) == pytest.approx(rec["peak_bytes"] / 2**30, abs=0.0051)
    assert f"printed {minsec(rec['estimate_seconds'])} before a run of {minsec(rec['wall_seconds'])}" in doc
    m = re.search(r"# reduced: about (\d+) minutes on 2 idle CPU cores", doc)
    assert m and int(m[1]) == round(rec["wall_seconds"] / 60)


def test_synth_docs_m500_budget_matches_its_records():
    """docs/synth.md's M500 paragraphs quote synth-relations-paper.json (measured over drawn and
    over NFW M500) and synth-m500-budget.json (the subhaloes' share of the deficit)."""
    diag = _json("synth-relations-paper.json")["diagnostics"]
    budget = _json("synth-m500-budget.json")
    doc = _flat((ROOT / "docs" / "synth.md").read_text())
    drawn, nfw = diag["m500_measured_over_drawn"], diag["m500_measured_over_nfw"]
    m = re.search(r"is ([\d.]+)× the M500 the gas relations were drawn at \(([\d.]+)× in groups", doc)
    assert m and [float(m[1]), float(m[2])] == [round(drawn["1e14-3e14"], 3), round(drawn["groups_1e13-1e14"], 3)]
    m = re.search(r"and ([\d.]+)× the NFW M500 of the drawn M200 and concentration \(([\d.]+)×", doc)
    assert m and [float(m[1]), float(m[2])] == [round(nfw["1e14-3e14"], 3), round(nfw["groups_1e13-1e14"], 3)]
    m = re.search(r"holds about (\d+) % less within its spherical R500 \((\d+) % in groups\)", doc)
    assert m and [int(m[1]), int(m[2])] == [round(100 * (1 - nfw["1e14-3e14"])),
                                            round(100 * (1 - nfw["groups_1e13-1e14"]))]
    m = re.search(r"the (\d+) % of M200 in subhaloes on an Einasto profile removes ([\d.]+) % of the mass inside R500",
                  doc)
    assert m and int(m[1]) == round(100 * budget["subhalo_mass_fraction"])
    cluster = next(r for r in budget["rows"] if r["m200_msun"] == 2e14)
    assert float(m[2]) == round(100 * (1 - cluster["m500_with_subhaloes_over_nfw_m500"]), 1)


def test_train_docs_quote_the_recorded_paper_campaign():
    """docs/train.md's learning-rate paragraph quotes paper_training.json (test σ of the
    multi-channel network at both rates, its epochs), and reproduce's cost model its epoch times."""
    rec = _json("paper_training.json")
    assert rec.get("commit") and rec.get("load_average"), "regenerate paper_training.json"
    sigma = {e["name"]: e["table2"]["scatter_dex"] for e in rec["evaluation"]["estimators"]}
    doc = _flat((ROOT / "docs" / "train.md").read_text())
    m = re.search(r"test σ ([\d.]+) dex after (\d+) epochs, against ([\d.]+) dex at 0\.01", doc)
    assert m, "docs/train.md no longer quotes the paper campaign in the expected form"
    assert float(m[1]) == round(sigma["multi-lr1e-3"], 3) and float(m[3]) == round(sigma["multi"], 3)
    assert int(m[2]) == rec["runs"]["multi-lr1e-3"]["epochs"] == rec["runs"]["multi"]["epochs"]
    assert sigma["multi-lr1e-3"] == min(v for k, v in sigma.items() if not k.startswith("baseline")
                                        and "calibrated" not in k)
    m = re.search(r"the four\s+single-channel networks for (\d+) epochs, the multi-channel one for (\d+)\)", doc)
    assert m and [int(m[1]), int(m[2])] == [rec["runs"]["Ypar"]["epochs"], rec["runs"]["multi"]["epochs"]]
    from cmcnn.workflows.reproduce import TRAIN_S_PER_IMAGE

    slowest = {}
    for name, r in rec["runs"].items():
        kind = "multi" if name.startswith("multi") else "single"
        per_image = r["median_epoch_seconds"] / (r["n_train"] + r["n_validation"])
        slowest[kind] = max(slowest.get(kind, 0.0), per_image)
    for kind, per_image in slowest.items():   # the slowest run's rate, rounded up
        assert per_image <= TRAIN_S_PER_IMAGE[kind] < 1.1 * per_image, (kind, per_image)
