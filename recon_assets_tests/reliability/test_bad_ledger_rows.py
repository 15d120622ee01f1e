"""Bad ledger rows: ``recon-assets fifo`` refuses them by order id and field (exit 3) and
changes nothing; ``--skip-bad-rows`` writes a version that lists them in
``fifo_computation_log.skipped_rows``, again without touching anything already stored.

The ledger is a loosely typed SQLite ``trade_records`` (every column TEXT, no primary key), the
kind of table where anything can end up: text in money columns, duplicate order ids.
"""

from __future__ import annotations

import json

from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.exchange.demo import demo_history
from recon_assets.ledger.store import LedgerStore
from recon_assets.money import decimal_str
from recon_assets_tests.reliability.conftest import snapshot

LOOSE_TABLE = """
CREATE TABLE trade_records (order_id TEXT, symbol TEXT, side TEXT, order_time TEXT,
                            price TEXT, size TEXT, total_fees_usd TEXT)
"""
GOOD = sorted(demo_history().orders, key=lambda o: o["order_time"])[:60]
ROW = {"symbol": "BTC-USD", "side": "buy", "order_time": "2026-10-30T12:00:00+00:00",
       "price": "70000.00", "size": "0.01", "total_fees_usd": "2.80"}
#: order id -> (field the error must name, how the row is broken)
BAD = {
    "bad-zero-size": ("size", {"size": "0"}),
    "bad-negative-size": ("size", {"size": "-1.5"}),
    "bad-side": ("side", {"side": "hold"}),
    "bad-no-price": ("price", {"price": None}),
    "bad-no-time": ("order_time", {"order_time": None}),
    "bad-text-time": ("order_time", {"order_time": "yesterday"}),
    "bad-text-price": ("price", {"price": "12,5"}),
    "bad-text-size": ("size", {"size": "abc"}),
    "dup-1": ("order_id", {}),
}
VERSIONED = ("fifo_allocations", "fifo_computation_log", "manual_review_queue")


def _insert(url: str, rows: list[dict]) -> None:
    store = LedgerStore(url)
    with store.begin() as conn:
        conn.execute(text("INSERT INTO trade_records VALUES (:order_id, :symbol, :side, "
                          ":order_time, :price, :size, :total_fees_usd)"), rows)
    store.dispose()


def _good_rows() -> list[dict]:
    return [{"order_id": o["order_id"], "symbol": o["symbol"], "side": o["side"],
             "order_time": o["order_time"].isoformat(), "price": decimal_str(o["price"]),
             "size": decimal_str(o["size"]), "total_fees_usd": decimal_str(o["total_fees_usd"])}
            for o in GOOD]


def _bad_rows() -> list[dict]:
    rows = [{**ROW, "order_id": oid, **change} for oid, (_, change) in BAD.items()]
    return rows + [{**ROW, "order_id": "dup-1", "size": "0.02"}]  # the same id twice


def test_bad_rows_stop_fifo_and_skip_bad_rows_lists_them(sqlite_url, monkeypatch, capfd):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    store = LedgerStore(sqlite_url)
    with store.begin() as conn:
        conn.execute(text(LOOSE_TABLE))
    _insert(sqlite_url, _good_rows())
    assert main(["fifo", "-q"]) == 0  # version 1 from the clean ledger
    _insert(sqlite_url, _bad_rows())
    capfd.readouterr()
    before = snapshot(sqlite_url)

    assert main(["fifo", "-q"]) == 3
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("recon-assets: "), err
    for oid, (field, _) in BAD.items():
        assert f"{oid}: {field}:" in lines[0], (oid, lines[0])
    assert "--skip-bad-rows" in lines[0]
    assert snapshot(sqlite_url) == before, "a refused computation changed the ledger"

    # exit 1: the ledger still has bad rows, which its own checks (ERROR) keep reporting
    assert main(["fifo", "--skip-bad-rows", "-q"]) == 1
    out, err = capfd.readouterr()
    assert "FIFO version 2" in out and f"skipped {len(BAD)} bad ledger rows" in out
    assert "FAIL  check_database_trades_valid_rows (8 rows)" in out
    assert "FAIL  check_database_trades_no_duplicates (1 rows)" in out
    assert "order_id=bad-side, field=side" in out
    after = snapshot(sqlite_url)
    for table, rows in before.items():
        if table in VERSIONED:  # version 1 exactly as it was; version 2 added
            assert set(rows) <= set(after[table]), table
        else:
            assert after[table] == rows, table
    with store.connect() as conn:
        skipped, trade_count = conn.execute(text(
            "SELECT skipped_rows, trade_count FROM fifo_computation_log "
            "WHERE allocation_version = 2")).one()
        statuses = dict(conn.execute(text(
            "SELECT allocation_version, status FROM fifo_computation_log")).all())
        bad_in_v2 = conn.execute(text(
            "SELECT count(*) FROM fifo_allocations WHERE allocation_version = 2 AND "
            "(sell_order_id LIKE 'bad-%' OR buy_order_id LIKE 'bad-%' OR "
            " sell_order_id = 'dup-1' OR buy_order_id = 'dup-1')")).scalar()
    skipped = json.loads(skipped) if isinstance(skipped, str) else skipped
    assert {(oid, field) for oid, field, *_ in skipped} == {
        (oid, field) for oid, (field, _) in BAD.items()}
    assert trade_count == len(GOOD) and bad_in_v2 == 0
    assert statuses == {1: "validated", 2: "validated"}
