"""Figures quoted in the documentation agree with the recorded runs in bench/results/.

Every performance or scale figure the README, docs/*.md and bench/README.md quote
comes from a JSON file a script wrote (with the machine and the command); these
tests read the quoted numbers back from the text and compare them with the JSON,
so a figure cannot drift from its record.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

#: Kernel-table rows: label prefix -> (case, method, threads) in kernels.json.
KERNEL_ROWS = {
    "NGP vs NumPy": ("ngp", "cmc", 2),
    "CIC vs NumPy": ("cic", "cmc", 2),
    "SPH vs swiftsimio": ("sph", "cmc (same particles)", 2),
    "project per cluster": ("index", "project: with index", None),
    "`select_sphere`": ("index", "select_sphere: with index", None),
}
#: Columns of the README's kernel table.
KERNEL_COLUMNS = (("random", 10**7), ("clustered", 10**7), ("random", 10**8), ("clustered", 10**8))
#: Targets in bench/README.md: case -> (method, threads).
TARGET_CASES = {"ngp": ("cmc", 2), "cic": ("cmc", 2), "sph": ("cmc (same particles)", 2),
                "index": ("project: with index", None)}


def _json(name: str) -> dict:
    path = RESULTS / name
    if not path.is_file():
        pytest.skip(f"{path} not recorded")
    return json.loads(path.read_text())


def _ratio(kernels: dict, dataset: str, n: int, case: str, method: str, threads) -> float:
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
    rows = {r["workers"]: r for r in _json("dataset.json")["rows"]}
    text = (ROOT / "README.md").read_text()
    m = re.search(r"([\d.]+) images/s serial, ([\d.]+) images/s with\s+`--workers 2` \(([\d.]+)×\)",
                  text)
    assert m, "README no longer quotes the dataset benchmark in the expected form"
    assert _agrees(float(m.group(1)), rows[1]["images_per_second"])
    assert _agrees(float(m.group(2)), rows[2]["images_per_second"])
    assert _agrees(float(m.group(3)), rows[2]["speedup"])


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
        m = re.search(r"--types (\S+)` .*? took (\d+) s, peaked at ([\d.]+) GB and wrote ([\d.]+) GB", doc)
        assert m, "docs/scale.md no longer quotes the recorded cmc index run in the expected form"
        assert m[1] == ",".join(result["indexed_types"]) and f"--types {m[1]}" in result["index"]["command"]
        assert int(m[2]) == round(result["index"]["seconds"])
        assert float(m[3]) == pytest.approx(result["index"]["peak_rss_mb"] / 1024, abs=0.006)
        assert float(m[4]) == pytest.approx(result["indexed_bytes"] / 1e9, abs=0.006)
        m = re.search(r"a snapshot of (\d+) M particles; .*? load average of ([\d.]+)–([\d.]+)\)", doc)
        assert m and int(m[1]) == round(sum(result["universe"]["n_particles"].values()) / 1e6)
        loads = [x for r in result["rows"] for x in r["load_average_1min"]]
        assert [float(m[2]), float(m[3])] == [round(min(loads), 1), round(max(loads), 1)]
        before = _json("distributed-paper-unreleased.json")["rows"]
        m = re.search(r"single worker peaked at (\d+) MB and each of two at (\d+)/(\d+) MB", doc)
        assert m and int(m[1]) == round(before[0]["peak_rss_mb_per_worker"][0])
        assert [int(m[2]), int(m[3])] == [round(p) for p in before[1]["peak_rss_mb_per_worker"]]
        assert "peak RSS 13.5 GB" in result["note"]
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


def test_readme_quotes_the_kernel_rerun_and_the_centres_benchmark():
    """README's rerun sentence and centres sentence quote kernels-rerun.json and centres.json."""
    doc = " ".join(_section((ROOT / "README.md").read_text(), "## Benchmarks").split())
    rows = _json("kernels-rerun.json")["rows"]

    def ratio(dataset, case):
        return next(r["ratio"] for r in rows if r["dataset"] == dataset and r["n"] == 10_000_000
                    and r["case"] == case and r["method"] == "cmc" and r["threads"] == 2)

    m = re.search(r"NGP ([\d.]+)× \(random 1e7\) and ([\d.]+)× \(clustered\), CIC ([\d.]+)× and ([\d.]+)×", doc)
    assert m, "README no longer quotes the kernel rerun"
    for quoted, (dataset, case) in zip(m.groups(), [("random", "ngp"), ("clustered", "ngp"),
                                                     ("random", "cic"), ("clustered", "cic")]):
        assert float(quoted) == pytest.approx(ratio(dataset, case), rel=0.01)
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
