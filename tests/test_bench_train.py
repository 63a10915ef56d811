"""``cmc bench train`` runs its workers and records a table (slow: builds 120-px networks)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_bench_train_records_rows(tmp_path):
    from cmcnn.cli import main

    assert main(["bench", "train", "--images", "50", "--networks", "single", "--threads", "1",
                 "--repeat", "1", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "train.json").read_text())
    (row,) = rec["rows"]
    assert row["network"] == "single" and row["threads"] == 1
    assert row["cmc_images_per_s"] > 0 and row["keras_fit_images_per_s"] > 0
    assert "cpu_model" in rec["machine"]
