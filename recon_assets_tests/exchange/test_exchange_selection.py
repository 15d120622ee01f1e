"""SPEC section 1's exchange selection rule: the embedded demo simulator serves only the
embedded default ledger, or any ledger when ``RECON_EXCHANGE=simulator`` asks for it. Any other
ledger with no exchange configured is refused (exit 2, one line) before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import func, inspect, select

from recon_assets.cli import main
from recon_assets.errors import ConfigError
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.resources import ExchangeResource
from recon_assets.ledger import schema
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import load_settings
from recon_assets_tests.conftest import seed_trade_records

WATCHED = (schema.trade_records, schema.exchange_fills, schema.sync_state,
           schema.backfill_requests, schema.reconciliation_runs)
EXCHANGE_COMMANDS = (["sync"], ["reconcile", "--tier", "3", "--auto-backfill"],
                     ["reconcile", "--tier", "2", "--auto-backfill", "--json"])


@pytest.fixture(params=["sqlite", "bottrader_postgresql"])
def real_ledger(request) -> str:
    """A bot's ledger that is not ``$RECON_HOME/ledger.db``: a SQLite file elsewhere, or a
    BotTrader-shaped PostgreSQL schema, holding the demo bot's orders."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite"
                                  else "bottrader_pg_url")
    # as a bot has it: its trade_records, none of recon-assets' tables yet
    seed_trade_records(url, demo_history().ledger_orders[:50], with_own_tables=False)
    return url


def table_counts(url: str) -> dict[str, int]:
    """Rows of the watched tables (0 where a table is missing)."""
    store = LedgerStore(url)
    try:
        with store.connect() as conn:
            names = set(inspect(conn).get_table_names())
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    if t.name in names else 0 for t in WATCHED}
    finally:
        store.dispose()


def table_names(url: str) -> list[str]:
    store = LedgerStore(url)
    try:
        with store.connect() as conn:
            return sorted(inspect(conn).get_table_names())
    finally:
        store.dispose()


def embedded_simulator_started() -> bool:
    """The embedded simulator writes its key under ``$RECON_HOME/simulator`` before it serves
    anything: no key file, no simulator, so not a single request reached it."""
    return (Path(os.environ["RECON_HOME"]) / "simulator" / "key.json").exists()


@pytest.mark.parametrize("command", EXCHANGE_COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_another_ledger_without_an_exchange_exits_2_and_writes_nothing(
        real_ledger, command, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", real_ledger)
    before, tables = table_counts(real_ledger), table_names(real_ledger)

    assert main(command) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("recon-assets: no exchange configured")
    for hint in ("COINBASE_KEY_FILE", "RECON_EXCHANGE_URL", "RECON_EXCHANGE=simulator"):
        assert hint in line
    assert table_counts(real_ledger) == before
    assert table_names(real_ledger) == tables == ["trade_records"]  # not even our tables
    assert not embedded_simulator_started()


def test_the_opt_in_serves_any_ledger_from_the_embedded_simulator(sqlite_url, monkeypatch):
    store = LedgerStore(sqlite_url)  # an empty ledger elsewhere than $RECON_HOME
    store.ensure_schema()
    store.dispose()
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RECON_EXCHANGE", "simulator")
    assert main(["sync", "-q"]) == 0
    assert table_counts(sqlite_url)["exchange_fills"] == len(demo_history().fills)
    with ExchangeResource.from_settings(load_settings()).process_config_and_initialize().get_client() as client:
        assert client.source == "simulator"


def test_the_embedded_default_ledger_however_spelled_uses_the_simulator(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///recon_home/../recon_home/ledger.db")
    resource = ExchangeResource.from_settings(load_settings()).process_config_and_initialize()
    resource.check_configured()
    with resource.get_client() as client:
        assert client.source == "simulator"


@pytest.mark.parametrize("value", ["simulater", "coinbase", "yes"])
def test_unknown_recon_exchange_is_refused(value, monkeypatch, capsys):
    monkeypatch.setenv("RECON_EXCHANGE", value)
    assert main(["sync", "-q"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "RECON_EXCHANGE" in line and repr(value) in line
    assert not embedded_simulator_started()


def test_the_opt_in_with_a_real_exchange_too_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("RECON_EXCHANGE", "simulator")
    monkeypatch.setenv("COINBASE_KEY_FILE", str(tmp_path / "cdp.json"))
    with pytest.raises(ConfigError, match="RECON_EXCHANGE=simulator"):
        load_settings()


@pytest.mark.parametrize("job_name", ["sync_job", "reconcile_job"])
def test_a_ui_run_fails_with_the_same_message_and_writes_nothing(real_ledger, job_name,
                                                                monkeypatch):
    from recon_assets.definitions import build_definitions

    monkeypatch.setenv("DATABASE_URL", real_ledger)
    defs = build_definitions(load_settings())  # what the UI's code server loads
    before = table_counts(real_ledger)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "exchange_fills"
    error = failure.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert error.cls_name == "ConfigError"
    assert "no exchange configured" in error.message
    assert "RECON_EXCHANGE=simulator" in error.message
    assert table_counts(real_ledger) == before
    assert not embedded_simulator_started()
