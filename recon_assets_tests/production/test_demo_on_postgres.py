"""``recon-assets demo`` as a user runs it, with DAGSTER_HOME on the production config: it
exits 0 and every run of the loop is stored in PostgreSQL."""

from __future__ import annotations

import pytest

from recon_assets_tests.production.conftest import pg_rows
from recon_assets_tests.production.services import run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_demo_records_its_runs_in_postgres(production_home, dagster_pg_url):
    result = run_cli(["recon-assets", "demo", "-q"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks pass" in result.stdout

    runs = pg_rows(dagster_pg_url, "SELECT pipeline_name, status FROM runs ORDER BY id")
    assert [r.pipeline_name for r in runs] == [
        "sync_job", "fifo_job", "reconcile_job", "reconcile_job", "reconcile_job", "fifo_job",
        "validate_job"]
    assert {r.status for r in runs} == {"SUCCESS"}
    checks = pg_rows(dagster_pg_url, "SELECT count(*) AS n FROM asset_check_executions "
                                     "WHERE check_name LIKE 'check_fifo_allocations_%'")
    assert checks[0].n > 0
    assert not (production_home / "history").exists()  # no SQLite run storage on the side
