"""Ledgers of other shapes, on SQLite and PostgreSQL: a ``trade_records`` without a column FIFO
reads is refused (exit 2 naming it) unless zero fees are assumed on purpose, and a view named
``trade_records`` is a read-only ledger: read, fingerprinted, never written."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text

from recon_assets.cli import main
from recon_assets.ledger import backfill
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.reconcile.test_backfill import missing_orders

ORDERS = [
    {"order_id": "b1", "symbol": "BTC-USD", "side": "buy",
     "order_time": datetime(2026, 1, 1, 10, tzinfo=timezone.utc),
     "price": Decimal("100"), "size": Decimal("1")},
    {"order_id": "s1", "symbol": "BTC-USD", "side": "sell",
     "order_time": datetime(2026, 1, 2, 10, tzinfo=timezone.utc),
     "price": Decimal("110"), "size": Decimal("1")},
]


def _types(store: LedgerStore) -> dict[str, str]:
    if store.dialect == "postgresql":  # BotTrader's types
        return {"time": "timestamptz", "money": "double precision"}
    return {"time": "TEXT", "money": "REAL"}


def _count(store: LedgerStore, sql: str) -> int:
    with store.connect() as conn:
        return int(conn.execute(text(sql)).scalar())


def test_a_ledger_without_a_fee_column_needs_assume_zero_fees(ledger_url, monkeypatch, capfd):
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    store = LedgerStore(ledger_url)
    with store.begin() as conn:
        conn.execute(text(
            "CREATE TABLE trade_records (order_id varchar PRIMARY KEY, symbol varchar NOT NULL, "
            "side varchar NOT NULL, order_time {time} NOT NULL, price {money} NOT NULL, "
            "size {money} NOT NULL)".format(**_types(store))))
    seed_trade_records(ledger_url, ORDERS)
    capfd.readouterr()

    assert main(["fifo", "-q"]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "total_fees_usd" in err, err
    assert "--assume-zero-fees" in err
    assert _count(store, "SELECT count(*) FROM fifo_computation_log") == 0

    assert main(["fifo", "-q", "--assume-zero-fees"]) == 0
    out = capfd.readouterr().out
    assert "FIFO version 1" in out and "total realized PnL 10" in out, out
    assert "WARN  check_database_trades_schema" in out
    with store.connect() as conn:
        assert conn.execute(text("SELECT status FROM fifo_computation_log")).scalar() == \
            "validated"

    with store.begin() as conn:  # the other FIFO columns are always required
        conn.execute(text("ALTER TABLE trade_records DROP COLUMN size"))
    assert main(["fifo", "-q", "--assume-zero-fees"]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no column size" in err, err
    assert _count(store, "SELECT count(*) FROM fifo_computation_log") == 1
    store.dispose()


def test_a_view_named_trade_records_is_a_read_only_ledger(ledger_url, monkeypatch, capfd):
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    store = LedgerStore(ledger_url)
    with store.begin() as conn:
        conn.execute(text(
            "CREATE TABLE bot_orders (order_id varchar PRIMARY KEY, symbol varchar, side "
            "varchar, order_time {time}, price {money}, size {money}, total_fees_usd {money}, "
            "note varchar)".format(**_types(store))))
        conn.execute(text(
            "INSERT INTO bot_orders VALUES "
            "('b1', 'BTC-USD', 'buy', '2026-01-01 10:00:00+00', 100, 1, 0.5, 'x'), "
            "('s1', 'BTC-USD', 'sell', '2026-01-02 10:00:00+00', 110, 1, NULL, 'y')"))
        conn.execute(text("CREATE VIEW trade_records AS SELECT order_id, symbol, side, "
                          "order_time, price, size, total_fees_usd FROM bot_orders"))
    assert "trade_records" not in store.ensure_schema()
    with store.connect() as conn:
        assert "trade_records" in inspect(conn).get_view_names()

    capfd.readouterr()
    assert main(["fifo", "-q"]) == 0
    assert "total realized PnL 9.5" in capfd.readouterr().out
    before = str(store.fingerprint())
    with store.begin() as conn:
        conn.execute(text("UPDATE bot_orders SET price = 101 WHERE order_id = 'b1'"))
    assert str(store.fingerprint()) != before

    with store.begin() as conn:
        ids = backfill.create_requests(conn, missing_orders(), tier=3, reason="tier 3",
                                       created_by="alice", run_id=1)
        backfill.approve(conn, ids, "bob")
    capfd.readouterr()
    assert main(["backfill", "apply"]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trade_records is a view" in err, err
    assert _count(store, "SELECT count(*) FROM bot_orders") == 2
    assert _count(store, "SELECT count(*) FROM backfill_requests "
                         "WHERE status = 'approved'") == len(ids)
    store.dispose()


@pytest.mark.parametrize("shape", ["primary key", "unique index", "partial unique index",
                                   "no key", "view"])
def test_the_census_finds_ids_seen_twice_unless_the_table_forbids_them(ledger_url, shape):
    """symbol_census skips grouping by order id only where the table itself keeps order ids
    unique (a primary key or a full unique index on order_id); a table without one, a
    partial unique index or a view is grouped, and an id seen twice is reported."""
    from recon_assets.ledger.store import _unique_order_ids

    store = LedgerStore(ledger_url)
    key = "PRIMARY KEY" if shape == "primary key" else ""
    table = "raw_trades" if shape == "view" else "trade_records"
    with store.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (order_id TEXT {key}, symbol TEXT, side TEXT, "
                          "order_time TEXT, price TEXT, size TEXT, total_fees_usd TEXT)"))
        if shape == "unique index":
            conn.execute(text("CREATE UNIQUE INDEX ux_ids ON trade_records (order_id)"))
        if shape == "partial unique index":
            conn.execute(text("CREATE UNIQUE INDEX ux_ids ON trade_records (order_id) "
                              "WHERE side = 'buy'"))
        if shape == "view":
            conn.execute(text("CREATE VIEW trade_records AS SELECT * FROM raw_trades"))
        row = "('{}', 'BTC-USD', '{}', '2024-01-01 00:00:00', '1', '1', '0')"
        rows = [row.format("a", "buy"), row.format("b", "sell")]
        if not key and shape != "unique index":
            rows.append(row.format("b", "sell"))  # an id twice (the partial index allows it)
        conn.execute(text(f"INSERT INTO {table} VALUES {', '.join(rows)}"))
    with store.connect() as conn:
        unique = _unique_order_ids(conn)
    symbols, problems = store.symbol_census()
    store.dispose()
    assert unique == (shape in ("primary key", "unique index"))
    assert symbols == ["BTC-USD"]
    assert problems == ([] if unique else [("b", "order_id", "duplicate order id")])
