"""``deploy/dagster.yaml`` on the real PostgreSQL: the instance it builds, and the project's
own CLI recording its runs and asset-check executions there."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.production.conftest import pg_rows

pytestmark = pytest.mark.postgres


def test_instance_stores_everything_in_postgres_and_queues_one_run_at_a_time(production_home):
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 1
        assert queue.tag_concurrency_limits == [{"key": "recon-assets/exclusive", "limit": 1}]
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 6 * 3600
        assert not instance.telemetry_enabled
        retention = {status.value: days for status, days in
                     instance.get_tick_retention_settings(InstigatorType.SENSOR).items()}
        assert retention == {"STARTED": -1, "SKIPPED": 7, "SUCCESS": 365, "FAILURE": 90}
        assert instance.run_storage.get_run_records() == []


@pytest.mark.slow
def test_cli_reconcile_and_fifo_record_runs_and_checks_in_postgres(
        demo_exchange, production_home, monkeypatch, sqlite_url, dagster_pg_url, capsys):
    from recon_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(production_home))  # over demo_exchange's home
    seed_trade_records(sqlite_url, demo_exchange.history.ledger_orders)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)

    assert main(["reconcile", "--tier", "3", "-q"]) == 1  # the demo ledger has gaps
    assert main(["fifo", "-q"]) == 0
    capsys.readouterr()

    runs = pg_rows(dagster_pg_url, "SELECT run_id, pipeline_name, status FROM runs ORDER BY id")
    assert [(r.pipeline_name, r.status) for r in runs] == [
        ("reconcile_job", "SUCCESS"), ("fifo_job", "SUCCESS")]
    assert not (production_home / "history").exists()  # no SQLite run storage on the side

    checks = pg_rows(dagster_pg_url,
                     "SELECT asset_key, check_name, execution_status FROM asset_check_executions "
                     "WHERE run_id = :run_id", run_id=runs[1].run_id)
    fifo_checks = {r.check_name: r.execution_status for r in checks
                   if json.loads(r.asset_key) == ["fifo_allocations"]}
    assert fifo_checks["check_fifo_allocations_no_buy_over_allocated"] == "SUCCEEDED"
    assert fifo_checks["check_fifo_allocations_sells_fully_allocated"] == "SUCCEEDED"
    # the demo ledger lacks buys: unmatched sells are a (non-blocking) failed WARN check
    assert fifo_checks["check_fifo_allocations_no_unmatched_sells"] == "FAILED"


@pytest.mark.slow
def test_cli_takes_the_production_instance_from_dotenv(
        production_home, dagster_pg_url, monkeypatch, tmp_path):
    """README.md, section Production: one .env drives the CLI too, DAGSTER_PG_URL included."""
    from recon_assets.cli import main

    (tmp_path / ".env").write_text(f"DAGSTER_HOME={production_home}\n"
                                   f"DAGSTER_PG_URL={dagster_pg_url}\n")
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.delenv("DAGSTER_PG_URL")
    assert main(["sync", "-q"]) == 0  # the embedded simulator and an empty embedded ledger
    runs = pg_rows(dagster_pg_url, "SELECT pipeline_name, status FROM runs")
    assert [(r.pipeline_name, r.status) for r in runs] == [("sync_job", "SUCCESS")]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_each_dagster_pg_url_form_stores_a_run_and_its_events(scheme, production_home,
                                                              dagster_pg_url, monkeypatch):
    """psycopg 3 (what ``postgresql://`` means to SQLAlchemy 2.1) breaks dagster-postgres'
    event log NOTIFY, and ``postgres://`` names no dialect: the instance pins psycopg2."""
    monkeypatch.setenv("DAGSTER_PG_URL",
                       dagster_pg_url.replace("postgresql+psycopg2://", f"{scheme}://", 1))

    @dg.asset
    def probe() -> int:
        return 1

    with dg.DagsterInstance.get() as instance:
        for storage in (instance.run_storage, instance.event_log_storage,
                        instance.schedule_storage):
            assert storage.postgres_url.startswith("postgresql+psycopg2://")
        assert dg.materialize([probe], instance=instance).success
    runs = pg_rows(dagster_pg_url, "SELECT status FROM runs")
    assert [r.status for r in runs] == ["SUCCESS"]
