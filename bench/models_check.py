"""Check every model card against a dataset regenerated from scratch: its table must come out the same.

Usage::

    PYTHONPATH=src python bench/models_check.py REGENERATED/paper.h5 [--work DIR] [--out bench/results]

For each shipped model (``models/<name>.onnx`` with its card ``models/<name>.md``) this runs
the card's check, ``cmc evaluate models/<name>.onnx --data REGENERATED/paper.h5 --baseline
CHANNELS``, writes the card again from that report into ``DIR`` with ``cmc card``, and
compares the two cards' Test-metrics tables line by line (the network row and every
baseline row, every digit).  ``models_cards_check.json`` records, per model, whether they
match and the network's σ and RMS, with the machine and the commands.  Regenerate the
dataset first with the first two steps of ``models/regenerate.sh`` (synth, dataset) in a
fresh folder; ``bench/compare_datasets.py`` compares it with the training dataset.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cmcore.benchmarks import machine_info, write_result

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("Star", "Fxs", "Fxb", "Ypar", "multi")


def table(card: Path) -> list[str]:
    """The rows of a card's Test-metrics table."""
    return [line for line in card.read_text().splitlines()
            if line.startswith("| baseline ") or (line.startswith("| ") and "(this model" in line)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the regenerated paper.h5")
    parser.add_argument("--work", type=Path, default=None, help="folder for the reports (default: temporary)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="models-check-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmc = [sys.executable, "-m", "cmcnn.cli"]
    result: dict = {"benchmark": "models_cards_check", "machine": machine_info(), "data": str(args.data),
                    "commands": [], "models": {}}
    for name in NAMES:
        model = ROOT / "models" / f"{name}.onnx"
        baseline = "all" if name == "multi" else name
        report = work / name
        card = work / f"{name}.md"
        evaluate = ["evaluate", str(model), "--data", str(args.data), "--baseline", baseline, "--out", str(report)]
        make_card = ["card", str(model), "--report", str(report), "--out", str(card)]
        result["commands"] += [" ".join(["cmc", *evaluate]), " ".join(["cmc", *make_card])]
        subprocess.run([*cmc, *evaluate], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([*cmc, *make_card], check=True, env=env, stdout=subprocess.DEVNULL)
        shipped, again = table(ROOT / "models" / f"{name}.md"), table(card)
        metrics = json.loads((report / "metrics.json").read_text())
        net = next(e["table2"] for e in metrics["estimators"] if e["kind"] == "network")
        result["models"][name] = {"card_matches": bool(shipped) and shipped == again,
                                  "rows_compared": len(shipped), "network_scatter_dex": net["scatter_dex"],
                                  "network_rms_pct": net["rms_pct"], "table_rows": again}
        print(f"{name}: {'matches' if result['models'][name]['card_matches'] else 'DIFFERS'} "
              f"({len(shipped)} rows)")
    text = "\n".join(f"{name}: card {'matches' if m['card_matches'] else 'DIFFERS'} ({m['rows_compared']} rows), "
                     f"network scatter {m['network_scatter_dex']:.4f} dex" for name, m in result["models"].items())
    path = write_result(args.out, "models_cards_check", result, text)
    print(f"written {path}")
    return 0 if all(m["card_matches"] for m in result["models"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
