"""``python -m benchmarks --quick`` runs every row and writes a complete results file.

No timing is asserted: speed is the benchmarks' business, measured as ratios on a quiet
machine. What is asserted is that every row ran, reported numbers, and that the checks that
are about correctness (not speed or memory) hold even at the quick size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Number
from pathlib import Path

import pytest

from recon_assets_tests.conftest import PG_BASE_URL

REPO = Path(__file__).resolve().parents[2]
ROWS = ["fifo_allocate", "compare_orders", "sync", "tier1", "fifo_version", "fifo_job",
        "fifo_incremental",
        "fifo_allocate_decimal", "fifo_allocate_string", "fifo_allocate_float64",
        "fifo_allocate_arrow", "compare_orders_float64", "compare_orders_string"]
#: Checks about results rather than speed or memory: they must hold at any size.
CORRECTNESS = {"identical", "same findings as datacompy", "requests failed after retries",
               "fills archived", "re-sync requests", "finds the missing buys",
               "write uses COPY", "same rows as executemany", "symbols recomputed",
               "same rows as a full recompute", "same log figures as a full recompute",
               "versions written"}

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_quick_run_reports_every_row_with_numbers(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "RECON_BENCH_PG_URL": PG_BASE_URL}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["quick"] is True
    assert doc["machine"]["cpus"] >= 1 and doc["machine"]["date"]
    assert [row["name"] for row in doc["rows"]] == ROWS
    for row in doc["rows"]:
        for key in ("seconds", "baseline_seconds", "ratio", "peak_rss_mib"):
            assert isinstance(row[key], Number) and row[key] > 0, (row["name"], key, row[key])
        assert row["baseline"] and row["checks"], row["name"]
        assert row["met"] == all(c["met"] for c in row["checks"])
        for item in row["checks"]:
            assert item["value"] is not None, (row["name"], item)
            if item["name"] in CORRECTNESS:
                assert item["met"], (row["name"], item)
    for row in doc["rows"]:  # the table names every row too
        assert row["title"] in proc.stdout
