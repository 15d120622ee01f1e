"""Mistakes a user can fix exit 2 with one line, before anything runs or is recorded."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.errors import EXIT_USAGE
from recon_assets.ledger import backfill
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.reconcile.backfill_data import create, missing_orders


@pytest.fixture
def ledger(sqlite_url, monkeypatch, tmp_path) -> LedgerStore:
    """A ledger with one BTC-USD order and three pending backfill requests."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    # an exchange is configured (the demo simulator, on purpose), so what reconcile refuses
    # is the symbol, not the missing exchange (which is refused first, before the ledger)
    monkeypatch.setenv("RECON_EXCHANGE", "simulator")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    seed_trade_records(sqlite_url, missing_orders().iloc[3:].to_dict("records"))
    store = LedgerStore(sqlite_url)
    create(store)
    yield store
    store.dispose()


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("argv, words", [
    (["backfill", "approve"], "cannot approve: no request ids given"),
    (["backfill", "reject"], "cannot reject: no request ids given"),
    (["backfill", "approve", "0"], "request 0: not a request id"),
    (["backfill", "reject", "-3"], "request -3: not a request id"),
    (["backfill", "approve", "1", "99999999999999999999"],
     "request 99999999999999999999: not a request id"),
    (["backfill", "apply", "99999999999999999999"], "cannot apply: request 9999"),
])
def test_backfill_ids_that_name_no_request_exit_2(ledger, capsys, argv, words):
    assert main(argv) == EXIT_USAGE
    assert words in _one_line(capsys)
    with ledger.connect() as conn:  # nothing decided
        assert set(backfill.list_requests(conn)["status"]) == {"pending"}


def test_backfill_list_status_must_exist(ledger, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["backfill", "list", "--status", "aproved"])
    assert exit_.value.code == EXIT_USAGE
    assert "invalid choice: 'aproved'" in capsys.readouterr().err


def test_reconcile_of_an_unknown_symbol_exits_2_and_records_no_run(ledger, capsys):
    assert main(["reconcile", "--tier", "3", "--symbol", "BTC-USDT", "-q"]) == EXIT_USAGE
    line = _one_line(capsys)
    assert "'BTC-USDT'" in line and "symbols there: BTC-USD" in line
    with ledger.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM reconciliation_runs")).scalar() == 0
    runs = os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")
    assert not os.path.exists(runs) or not os.listdir(runs)  # no Dagster run either
