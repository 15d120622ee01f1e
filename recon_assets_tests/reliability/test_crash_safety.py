"""Crash safety: a process SIGKILLed in the middle of a ledger write leaves the ledger exactly as
it was (the transaction never commits, the lock dies with the process), and the next normal
run carries on. On real PostgreSQL (advisory xact lock) and SQLite (lock file, WAL)."""

from __future__ import annotations

import os
import signal

import pandas as pd
from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.exchange.demo import demo_history
from recon_assets.ledger import backfill
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.reliability.conftest import count, snapshot, start_helper

HISTORY = demo_history()
MISSING = [o for o in HISTORY.orders
           if o["order_id"] in set(HISTORY.missing_buy_ids) | set(HISTORY.missing_sell_ids)]


def approved_backfill(url: str) -> list[int]:
    """The demo ledger (with its gaps) and an approved backfill request per missing order."""
    seed_trade_records(url, HISTORY.ledger_orders)
    store = LedgerStore(url)
    with store.begin() as conn:
        ids = backfill.create_requests(conn, pd.DataFrame(MISSING), tier=3, reason="test",
                                       created_by="test", run_id=None)
        backfill.approve(conn, ids, "reviewer")
    store.dispose()
    return ids


def kill_when_ready(command: str, url: str) -> str:
    """Run a helpers.py command, SIGKILL it once it has written (uncommitted); its READY line."""
    proc = start_helper(command, url)
    ready = proc.wait_for("READY", "stdout")
    os.kill(proc.pid, signal.SIGKILL)
    code, _, err = proc.finish()
    assert code == -signal.SIGKILL, err
    return ready


def test_a_killed_backfill_leaves_the_ledger_as_before(ledger_url, monkeypatch, capsys):
    ids = approved_backfill(ledger_url)
    tables = ["trade_records", "backfill_requests"]
    before = snapshot(ledger_url, tables)

    ready = kill_when_ready("backfill", ledger_url)
    assert f"inserted {len(MISSING)} orders" in ready  # it had written them, uncommitted
    assert snapshot(ledger_url, tables) == before

    monkeypatch.setenv("DATABASE_URL", ledger_url)
    assert main(["backfill", "apply", "--by", "survivor"]) == 0
    assert f"inserted {len(MISSING)} orders" in capsys.readouterr().out
    assert count(ledger_url, "SELECT count(*) FROM trade_records") == len(HISTORY.orders)
    assert count(ledger_url, "SELECT count(*) FROM backfill_requests WHERE status = 'applied' "
                             "AND applied_by = 'survivor'") == len(ids)


def test_a_killed_version_write_leaves_no_partial_version(ledger_url, monkeypatch, capsys):
    seed_trade_records(ledger_url, HISTORY.orders)
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    assert main(["fifo", "-q"]) == 0  # version 1
    tables = ["fifo_allocations", "fifo_computation_log", "manual_review_queue"]
    before = snapshot(ledger_url, tables)

    ready = kill_when_ready("version", ledger_url)
    assert "version 2 with" in ready
    assert snapshot(ledger_url, tables) == before

    capsys.readouterr()  # the ledger is unchanged: only --force writes version 2 (SPEC 3)
    assert main(["fifo", "--force", "-q"]) == 0
    assert "FIFO version 2" in capsys.readouterr().out
    store = LedgerStore(ledger_url)
    with store.connect() as conn:
        logged = dict(conn.execute(text(
            "SELECT allocation_version, allocation_count FROM fifo_computation_log")).all())
        stored = dict(conn.execute(text(
            "SELECT allocation_version, count(*) FROM fifo_allocations "
            "GROUP BY allocation_version")).all())
    store.dispose()
    assert logged == stored and set(logged) == {1, 2}
