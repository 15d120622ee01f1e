"""The executor comes from configuration; staged FIFO rows of ended runs are discarded, those
of running runs are not, and a version is promoted from the staging tables exactly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from recon_assets.errors import ConfigError, LedgerError
from recon_assets.execution import build_executor
from recon_assets.fifo.fanout import UNKNOWN_RUN_GRACE, discard_abandoned_staging
from recon_assets.fifo.service import allocate_symbols, plan_version
from recon_assets.ledger import staging
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records


def job_executor(monkeypatch, value: str | None) -> dg.ExecutorDefinition:
    from recon_assets.definitions import build_definitions
    from recon_assets.settings import load_settings

    if value is not None:
        monkeypatch.setenv("RECON_EXECUTOR", value)
    return build_definitions(load_settings()).resolve_job_def("fifo_job").executor_def


@pytest.mark.parametrize("value, default", [(None, "in_process"), ("multiprocess", "multiprocess"),
                                            ("celery", "celery")])
def test_recon_executor_sets_the_default_choice(monkeypatch, value, default):
    executor = job_executor(monkeypatch, value)
    assert executor.name == "recon_executor"
    assert executor.config_schema.as_field().default_value == {default: {}}
    fields = executor.config_schema.as_field().config_type.fields
    assert set(fields) == {"in_process", "multiprocess", "celery"}
    assert {"broker", "backend", "config_source"} <= set(fields["celery"].config_type.fields)


def test_unknown_executor_is_a_config_error():
    with pytest.raises(ConfigError, match="RECON_EXECUTOR must be one of"):
        build_executor("threads")


def _fifo_job() -> dg.JobDefinition:
    from recon_assets.definitions import defs

    return defs.resolve_job_def("fifo_job")


def _stage(store: LedgerStore, run_id: str, symbol: str | None = None) -> None:
    plan = plan_version(store)
    with store.begin() as conn:
        staging.stage_plan(conn, run_id, plan)
        for s in [symbol] if symbol else []:
            staging.stage_part(conn, run_id, s, allocate_symbols(store, [s]))


def test_abandoned_staging_is_discarded_and_live_staging_kept(ledger_url):
    from recon_assets.exchange.demo import demo_history

    seed_trade_records(ledger_url, demo_history().ledger_orders)
    store = LedgerStore(ledger_url)
    with dg.instance_for_test() as instance:
        running = instance.create_run_for_job(_fifo_job(), status=dg.DagsterRunStatus.STARTED)
        failed = instance.create_run_for_job(_fifo_job(), status=dg.DagsterRunStatus.FAILURE)
        for run_id in (running.run_id, failed.run_id, "unknown-recent", "current"):
            _stage(store, run_id, "BTC-USD")
        discarded = discard_abandoned_staging(store, instance, "current")
        assert discarded == [failed.run_id]
        with store.connect() as conn:
            assert set(staging.staged_runs(conn)) == {running.run_id, "unknown-recent",
                                                      "current"}
            # an unknown run's rows go once they are older than the grace period
            table = staging.fifo_staging_runs
            conn.execute(table.update().where(table.c.run_id == "unknown-recent").values(
                started_at=datetime.now(timezone.utc) - UNKNOWN_RUN_GRACE
                - timedelta(minutes=1)))
            conn.commit()
        assert discard_abandoned_staging(store, instance, "current") == ["unknown-recent"]
    store.dispose()


def test_parts_round_trip_exactly_and_need_their_plan(ledger_url):
    from recon_assets.exchange.demo import demo_history

    seed_trade_records(ledger_url, demo_history().ledger_orders)
    store = LedgerStore(ledger_url)
    part = allocate_symbols(store, ["ETH-USD"])
    with store.begin() as conn:
        with pytest.raises(LedgerError, match="no staged FIFO plan for run r1"):
            staging.stage_part(conn, "r1", "ETH-USD", part)
    _stage(store, "r1", "ETH-USD")
    with store.connect() as conn:
        (back,) = staging.read_parts(conn, "r1", ["ETH-USD"])
        with pytest.raises(LedgerError, match="no staged allocations for SOL-USD"):
            staging.read_parts(conn, "r1", ["ETH-USD", "SOL-USD"])
    assert back.trade_count == part.trade_count and back.problems == part.problems
    assert list(back.allocations.dtypes) == list(part.allocations.dtypes)
    assert back.allocations.equals(part.allocations)
    store.dispose()


def test_parts_are_staged_compressed_and_uncompressed_ones_still_read(ledger_url):
    """A part is staged as a zstd-compressed Arrow stream; one staged uncompressed (by a step
    of a run started before the change) reads back the same."""
    import io

    import pyarrow as pa
    from sqlalchemy import select, update

    from recon_assets.exchange.demo import demo_history
    from recon_assets.ledger.schema import fifo_staging

    seed_trade_records(ledger_url, demo_history().ledger_orders)
    store = LedgerStore(ledger_url)
    part = allocate_symbols(store, ["ETH-USD"])
    _stage(store, "r1", "ETH-USD")
    with store.begin() as conn:
        data = conn.execute(select(fifo_staging.c.allocations)).scalar_one()
        table = pa.ipc.open_stream(io.BytesIO(data)).read_all()
        plain = io.BytesIO()
        with pa.ipc.new_stream(plain, table.schema) as writer:
            writer.write_table(table)
        assert len(plain.getvalue()) > len(data)  # compressed, smaller
        conn.execute(update(fifo_staging).values(allocations=plain.getvalue()))
    with store.connect() as conn:
        (back,) = staging.read_parts(conn, "r1", ["ETH-USD"])
    assert list(back.allocations.dtypes) == list(part.allocations.dtypes)
    assert back.allocations.equals(part.allocations)
    store.dispose()
