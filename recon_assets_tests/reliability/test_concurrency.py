"""Concurrency: recomputes and backfills racing on one ledger (PostgreSQL and SQLite), each a
real ``recon-assets`` subprocess.

The test holds the ledger lock itself while the racers start, and lets go only once both have
read the ledger (FIFO: every per-symbol allocation step has logged; backfill on PostgreSQL: both
are polling the advisory lock), so without the lock they would both claim the same version or
insert the same orders.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.exchange.demo import demo_history
from recon_assets.ledger import backfill
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.reliability.conftest import (HANG_SECONDS, Running, child_env, count,
                                                     start_cli)

HISTORY = demo_history()
GAPS = set(HISTORY.missing_buy_ids) | set(HISTORY.missing_sell_ids)
MISSING = [o for o in HISTORY.orders if o["order_id"] in GAPS]
SYMBOLS = {o["symbol"] for o in HISTORY.orders}
#: A trade_records without a primary key: only recon-assets' own care keeps ids unique.
NO_KEY_TABLE = {
    "postgresql": "CREATE TABLE trade_records (order_id text, symbol text, side text, "
                  "order_time timestamptz, price numeric, size numeric, total_fees_usd numeric)",
    "sqlite": "CREATE TABLE trade_records (order_id TEXT, symbol TEXT, side TEXT, "
              "order_time TEXT, price TEXT, size TEXT, total_fees_usd TEXT)",
}


def _log(url: str) -> dict[int, tuple[str, int]]:
    store = LedgerStore(url)
    with store.connect() as conn:
        rows = conn.execute(text("SELECT allocation_version, status, allocation_count "
                                 "FROM fifo_computation_log")).all()
    store.dispose()
    return {v: (status, n) for v, status, n in rows}


def _race(url: str, argv: list[str]) -> list[tuple[int, str, str]]:
    """Two ``recon-assets`` racers released together once both have allocated every symbol
    (the test holds the ledger lock meanwhile, so neither has written)."""
    store = LedgerStore(url)
    env = child_env(DATABASE_URL=url)
    with store.locked("fifo"):
        racers = [start_cli(argv, env) for _ in range(2)]
        for proc in racers:
            proc.wait_for(" allocations (", times=len(SYMBOLS))
    results = [proc.finish() for proc in racers]
    store.dispose()
    return results


def _reported(out: str) -> int:
    return int(out.split("FIFO version ")[1].split(":")[0])


def _assert_complete(url: str) -> dict[int, tuple[str, int]]:
    """Every logged version validated, with exactly its logged allocations, and queued for
    review once: nothing half-written, nothing written twice."""
    log = _log(url)
    assert {status for status, _ in log.values()} == {"validated"}, log
    assert count(url, "SELECT count(*) FROM fifo_allocations") == \
        sum(n for _, n in log.values())
    for version, (_, n) in log.items():
        assert count(url, "SELECT count(*) FROM fifo_allocations "
                          "WHERE allocation_version = :v", v=version) == n
    assert count(url, "SELECT count(DISTINCT allocation_version) "
                      "FROM manual_review_queue") == len(log)
    return log


def test_two_concurrent_fifo_runs_on_one_ledger_write_one_version(ledger_url):
    """SPEC 3: nothing changed between them, so both runs are of partition 1; one writes it
    and the other reports it as stored."""
    seed_trade_records(ledger_url, HISTORY.ledger_orders)
    results = _race(ledger_url, ["fifo"])
    assert [code for code, _, _ in results] == [0, 0], results
    assert [_reported(out) for _, out, _ in results] == [1, 1]
    assert set(_assert_complete(ledger_url)) == {1}


def test_two_concurrent_forced_fifo_runs_never_write_a_version_twice(ledger_url):
    """``--force`` after version 1: distinct new versions, or one run of a version and a
    clean refusal (exit 2, one line) - never a half-written or duplicate version."""
    seed_trade_records(ledger_url, HISTORY.ledger_orders)
    first = start_cli(["fifo", "-q"], child_env(DATABASE_URL=ledger_url)).finish()
    assert first[0] == 0, first
    results = _race(ledger_url, ["fifo", "--force"])
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, out, err in results:
        if code == 2:
            assert out == "" and len(err.strip().splitlines()) == 1, (out, err)
    log = _assert_complete(ledger_url)
    reported = {_reported(out) for code, out, _ in results if code == 0}
    assert reported <= set(log) and 1 not in reported
    assert set(log) == {1, *reported} and max(log) == len(log)


def test_each_fifo_run_validates_the_version_it_wrote(sqlite_url, monkeypatch, capsys):
    """Not the latest one: ``--version 1`` written after version 2 is validated itself."""
    seed_trade_records(sqlite_url, HISTORY.ledger_orders)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert main(["fifo", "--version", "2", "-q"]) == 0
    assert main(["fifo", "--version", "1", "--force", "-q"]) == 0  # the ledger is unchanged
    assert {v: status for v, (status, _) in _log(sqlite_url).items()} == {
        1: "validated", 2: "validated"}
    assert count(sqlite_url, "SELECT count(DISTINCT allocation_version) "
                             "FROM manual_review_queue") == 2


def _wait_for_pg_lock_pollers(url: str, racers: list[Running]) -> None:
    """Until every racer's session is polling ``pg_try_advisory_xact_lock`` (the holder's own
    session last ran something else, so it does not count)."""
    store = LedgerStore(url)
    deadline = time.monotonic() + HANG_SECONDS
    with store.connect() as conn:
        while True:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND datname = current_database() "
                "AND query LIKE 'SELECT pg_try_advisory_xact_lock%'")).scalar()
            conn.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting >= len(racers):
                break
            ended = [r.finish() for r in racers if r.proc.poll() is not None]
            if ended or time.monotonic() > deadline:
                pytest.fail(f"only {waiting} of {len(racers)} racers reached the lock; "
                            f"ended: {ended}")
            time.sleep(0.05)
    store.dispose()


def test_two_concurrent_backfill_applies_insert_each_order_once(ledger_url):
    store = LedgerStore(ledger_url)
    with store.begin() as conn:
        conn.execute(text(NO_KEY_TABLE[store.dialect]))
    seed_trade_records(ledger_url, HISTORY.ledger_orders)
    with store.begin() as conn:
        ids = backfill.create_requests(conn, pd.DataFrame(MISSING), tier=3, reason="test",
                                       created_by="test", run_id=None)
        backfill.approve(conn, ids, "reviewer")
    env = child_env(DATABASE_URL=ledger_url)
    with store.locked("backfill") as holder:
        holder.execute(text("SELECT 1"))  # the holder's session is not a poller
        racers = [start_cli(["backfill", "apply", "--by", f"racer-{i}"], env)
                  for i in range(2)]
        if store.dialect == "postgresql":
            _wait_for_pg_lock_pollers(ledger_url, racers)
    results = [proc.finish() for proc in racers]
    store.dispose()
    assert [code for code, _, _ in results] == [0, 0], results
    outs = sorted(out for _, out, _ in results)
    assert sum(f"inserted {len(MISSING)} orders" in out for out in outs) == 1, outs
    assert count(ledger_url, "SELECT count(*) FROM trade_records") == len(HISTORY.orders)
    assert count(ledger_url, "SELECT count(DISTINCT order_id) FROM trade_records") == \
        len(HISTORY.orders)
    assert count(ledger_url, "SELECT count(DISTINCT applied_by) FROM backfill_requests") == 1
    assert count(ledger_url, "SELECT count(*) FROM backfill_requests "
                             "WHERE status = 'applied'") == len(ids)


def test_a_sell_queued_by_another_run_meanwhile_is_not_queued_twice(pg_url, recon_home):
    """Two runs of one version (one wrote it, the other found it stored) queue its unmatched
    sells at the same moment. Here the other run's queue rows are inserted and held
    uncommitted until this run's ``unmatched_sells`` waits on them: the run then leaves them
    as they are (0 newly queued) and succeeds, not with a unique-key failure (exit 3)."""
    seed_trade_records(pg_url, HISTORY.ledger_orders)
    assert start_cli(["fifo", "-q"], child_env(DATABASE_URL=pg_url)).finish()[0] == 0
    store = LedgerStore(pg_url)
    with store.begin() as other:
        other.execute(text(
            "INSERT INTO manual_review_queue (sell_order_id, symbol, allocation_version, "
            "sell_time, sell_size, unmatched_size, inventory_at_sell, status, created_at, notes) "
            "SELECT sell_order_id, symbol, 2, sell_time, sell_size, unmatched_size, "
            "inventory_at_sell, status, created_at, notes FROM manual_review_queue "
            "WHERE allocation_version = 1"))
        run = start_cli(["fifo", "--force"], child_env(DATABASE_URL=pg_url))
        deadline = time.monotonic() + HANG_SECONDS
        with store.connect() as watcher:
            while not watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO manual_review_queue%'")).scalar():
                watcher.rollback()  # pg_stat_activity is a snapshot per transaction
                assert run.proc.poll() is None, run.finish()
                assert time.monotonic() < deadline, "the run never reached the queue"
                time.sleep(0.05)
    code, out, err = run.finish()
    store.dispose()
    assert code == 0, (out, err)
    assert _reported(out) == 2
    assert "version 2: 5 unmatched sells, 0 newly queued for review" in err
    assert count(pg_url, "SELECT count(*) FROM manual_review_queue "
                         "WHERE allocation_version = 2") == 5
    assert set(_assert_complete(pg_url)) == {1, 2}
    # Each version's report was written aside and renamed: no partial file is left.
    assert sorted(p.name for p in (recon_home / "reports").iterdir()) == [
        "daily_pnl_v1.csv", "daily_pnl_v2.csv"]
