"""Bad ledger rows: ``recon-assets fifo`` refuses them by order id and field (exit 3) and
changes nothing; ``--skip-bad-rows`` writes a version that lists them in
``fifo_computation_log.skipped_rows``, again without touching anything already stored.

The ledger is a loosely typed SQLite ``trade_records`` (every column TEXT, no primary key), the
kind of table where anything can end up: text in money columns, duplicate order ids.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.exchange.demo import demo_history
from recon_assets.ledger.store import LedgerStore
from recon_assets.money import decimal_str
from recon_assets_tests.conftest import seed_trade_records
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


# -- values that are not values, in typed columns ------------------------------------------

#: A SQLite ledger with typed columns: REAL money (1e400 is stored as Inf) and an INTEGER
#: order_time (an epoch number stays a number; ISO text stays text).
TYPED_SQLITE_TABLE = """
CREATE TABLE trade_records (order_id TEXT PRIMARY KEY, symbol TEXT, side TEXT,
                            order_time INTEGER, price REAL, size REAL, total_fees_usd REAL)
"""
_GOOD_SQL = {"symbol": "'BTC-USD'", "side": "'buy'", "order_time": "'2026-10-30 12:00:00+00'",
             "price": "70000.5", "size": "0.01", "total_fees_usd": "2.8"}
#: dialect -> order id -> (field the error must name, SQL literal of the broken value)
NOT_VALUES = {
    "sqlite": {
        "inf-price": ("price", {"price": "1e400"}),
        "minus-inf-fee": ("total_fees_usd", {"total_fees_usd": "-1e400"}),
        "huge-size": ("size", {"size": "1e16"}),
        "tiny-fee": ("total_fees_usd", {"total_fees_usd": "1e-40"}),
        "epoch-time": ("order_time", {"order_time": "1700000000"}),
    },
    "postgresql": {
        "nan-fee": ("total_fees_usd", {"total_fees_usd": "'NaN'"}),
        "inf-price": ("price", {"price": "'Infinity'"}),
        "minus-inf-size": ("size", {"size": "'-Infinity'"}),
        "huge-price": ("price", {"price": "1e15"}),
        "year-0": ("order_time", {"order_time": "'0001-12-31 23:00:00+00 BC'"}),
        "year-10000": ("order_time", {"order_time": "'10000-01-01 00:00:00+00'"}),
    },
}


@pytest.fixture(params=["sqlite", "postgresql"])
def typed_ledger(request) -> str:
    """A ledger with real column types: typed SQLite, or BotTrader's double precision."""
    if request.param == "postgresql":
        return request.getfixturevalue("bottrader_pg_url")
    url = request.getfixturevalue("sqlite_url")
    store = LedgerStore(url)
    with store.begin() as conn:
        conn.execute(text(TYPED_SQLITE_TABLE))
    store.dispose()
    return url


def _insert_sql(store: LedgerStore, order_id: str, values: dict[str, str]) -> None:
    row = {"order_id": f"'{order_id}'", **_GOOD_SQL, **values}
    if store.dialect == "postgresql":  # BotTrader's NOT NULL extras
        row.update(trigger="'{\"trigger\": \"bot\"}'", status="'filled'", source="'websocket'")
    with store.begin() as conn:
        conn.execute(text(f"INSERT INTO trade_records ({', '.join(row)}) "
                          f"VALUES ({', '.join(row.values())})"))


def test_values_that_are_not_values_are_refused_per_row(typed_ledger, monkeypatch, capfd):
    """NaN, infinities, out-of-range numbers, epoch numbers as times and dates outside years
    1-9999: each row is named with its field (exit 3), a NULL fee is still 0, and
    ``--skip-bad-rows`` leaves exactly those rows out."""
    monkeypatch.setenv("DATABASE_URL", typed_ledger)
    seed_trade_records(typed_ledger, GOOD)
    store = LedgerStore(typed_ledger)
    bad = NOT_VALUES[store.dialect]
    for oid, (_, change) in bad.items():
        _insert_sql(store, oid, change)
    _insert_sql(store, "null-fee", {"total_fees_usd": "NULL"})
    capfd.readouterr()
    # (SELECT * would make the driver raise on the year-0 time: the fingerprint covers it)
    before = snapshot(typed_ledger, VERSIONED), str(store.fingerprint())

    assert main(["fifo", "-q"]) == 3
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("recon-assets: "), err
    for oid, (field, _) in bad.items():
        assert f"{oid}: {field}:" in lines[0], (oid, lines[0])
    assert "null-fee" not in lines[0]
    assert (snapshot(typed_ledger, VERSIONED), str(store.fingerprint())) == before

    assert main(["fifo", "--skip-bad-rows", "-q"]) == 1  # the ledger's own checks still fail
    with store.connect() as conn:
        skipped, trade_count = conn.execute(text(
            "SELECT skipped_rows, trade_count FROM fifo_computation_log")).one()
    skipped = json.loads(skipped) if isinstance(skipped, str) else skipped
    assert {(oid, field) for oid, field, *_ in skipped} == {
        (oid, field) for oid, (field, _) in bad.items()}
    assert trade_count == len(GOOD) + 1  # the NULL-fee order is a good order
    trades = store.read_trades()
    assert trades.trades.set_index("order_id").loc["null-fee", "total_fees_usd"] == 0
    store.dispose()
