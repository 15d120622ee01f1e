"""The whole loop through the CLI, in-process: real ledger (SQLite, and BotTrader-shaped
PostgreSQL), real simulator through the real SDK, real Dagster runs in a persistent home."""

import json
from decimal import Decimal

import dagster as dg
import pytest
from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records


@pytest.fixture(params=["sqlite", "bottrader"])
def loop_ledger(request, monkeypatch, demo_exchange) -> str:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite"
                                  else "bottrader_pg_url")
    seed_trade_records(url, demo_exchange.history.ledger_orders)
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def _runs() -> int:
    """Runs recorded in ``$DAGSTER_HOME`` (the demo_exchange fixture's home)."""
    with dg.DagsterInstance.get() as instance:
        return instance.get_runs_count()


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_fifo_reconcile_backfill_loop(loop_ledger, demo_exchange, capsys):
    history = demo_exchange.history
    assert main(["sync", "-q"]) == 0
    assert main(["fifo", "-q"]) == 0
    out = capsys.readouterr().out
    assert "FIFO version 1" in out and "WARN  check_fifo_allocations_no_unmatched_sells" in out
    runs = _runs()
    assert main(["fifo", "-q"]) == 0  # nothing FIFO reads changed: no run, no new version
    out = capsys.readouterr().out
    assert out.startswith("FIFO version 1: unchanged since it was computed") and \
        "--force writes a new version" in out and "unmatched sells" in out
    assert _runs() == runs

    assert main(["validate", "--json", "-q"]) == 0
    report = _json(capsys)
    assert report["version"] == 1 and report["passed"]
    assert main(["validate", "--strict", "-q"]) == 1
    capsys.readouterr()

    assert main(["reconcile", "--tier", "1", "--json", "-q"]) == 1
    tier1 = _json(capsys)
    assert set(tier1) >= {"tier", "version", "missing_orders", "unmatched_sells", "mismatches",
                          "phantom_orders", "duplicates"}
    missing = {o["order_id"]: o for o in tier1["missing_orders"]}
    assert set(history.missing_buy_ids) <= set(missing)
    assert set(missing) <= set(history.missing_buy_ids) | set(history.missing_sell_ids)
    truth = {o["order_id"]: o for o in history.orders}
    for order_id, order in missing.items():
        assert Decimal(order["size"]) == truth[order_id]["size"]
        assert Decimal(order["price"]) == truth[order_id]["price"]
        assert Decimal(order["fee"]) == truth[order_id]["total_fees_usd"]

    assert main(["reconcile", "--tier", "3", "--auto-backfill", "-q"]) == 1
    out = capsys.readouterr().out
    assert f"Missing BUY orders found: {len(history.missing_buy_ids)}" in out
    assert main(["fifo", "-q"]) == 0
    assert "FIFO version 2" in capsys.readouterr().out
    assert main(["validate", "--strict", "-q"]) == 0
    capsys.readouterr()
    assert main(["reconcile", "--tier", "3", "--json", "-q"]) == 0
    clean = _json(capsys)
    assert clean["missing_orders"] == [] and clean["phantom_orders"] == []
    assert main(["reconcile", "--tier", "3", "--auto-backfill", "-q"]) == 0
    store = LedgerStore(loop_ledger)
    with store.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM trade_records")).scalar()
    assert count == len(history.orders)


COPY_COLUMNS = ("sell_order_id, buy_order_id, symbol, allocated_size, buy_price, sell_price, "
                "buy_fees_per_unit, sell_fees_per_unit, cost_basis_usd, proceeds_usd, "
                "net_proceeds_usd, pnl_usd, buy_time, sell_time, allocation_time, "
                "allocation_version, allocation_batch_id, notes")


def _damage(conn, dialect, how):
    """Damage one allocation row of version 1 and return (its sell id, the check expected)."""
    unmatched = how == "duplicate"
    row_id, sell_id, size, pnl = conn.execute(text(
        "SELECT id, sell_order_id, allocated_size, pnl_usd FROM fifo_allocations WHERE "
        f"buy_order_id IS {'' if unmatched else 'NOT '}NULL ORDER BY id LIMIT 1")).one()
    value = (lambda v: str(v)) if dialect == "sqlite" else (lambda v: v)
    if how == "size":
        conn.execute(text("UPDATE fifo_allocations SET allocated_size = :s WHERE id = :i"),
                     {"s": value(Decimal(str(size)) * 2), "i": row_id})
        return sell_id, "check_fifo_allocations_sells_fully_allocated"
    if how == "pnl":
        conn.execute(text("UPDATE fifo_allocations SET pnl_usd = :p WHERE id = :i"),
                     {"p": value(Decimal(str(pnl)) + 1), "i": row_id})
        return sell_id, "check_fifo_allocations_arithmetic"
    conn.execute(text(f"INSERT INTO fifo_allocations ({COPY_COLUMNS}) SELECT {COPY_COLUMNS} "
                      "FROM fifo_allocations WHERE id = :i"), {"i": row_id})
    return sell_id, "check_fifo_allocations_no_duplicate_pairs"


@pytest.mark.parametrize("how", ["size", "pnl", "duplicate"])
def test_validate_fails_on_damaged_rows(loop_ledger, demo_exchange, capsys, how):
    assert main(["fifo", "-q"]) == 0
    assert main(["validate", "--version", "1", "-q"]) == 0
    capsys.readouterr()
    store = LedgerStore(loop_ledger)
    with store.begin() as conn:
        sell_id, check = _damage(conn, store.dialect, how)
    assert main(["validate", "--version", "1", "--json", "-q"]) == 1
    report = _json(capsys)
    failed = {c["name"]: c for c in report["checks"] if not c["passed"]}
    assert check in failed, failed.keys()
    assert any(row.get("sell_order_id") == sell_id for row in failed[check]["failing"])
    assert main(["validate", "--version", "1", "-q"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {check}" in out and sell_id in out
