"""The columnar paths agree with the plain ones: a version read back by COPY into Arrow
decimals, the daily report summed by PostgreSQL, and the diff of Arrow or Decimal frames all
give what the Decimal objects give, value for value and digit for digit."""

from __future__ import annotations

import random
from decimal import Decimal

import pandas as pd
import pytest

from recon_assets.fifo import allocate
from recon_assets.fifo.reports import daily_pnl, daily_report
from recon_assets.fifo.version_diff import diff_versions, to_json
from recon_assets.fifo.rules import recorded_form, validate_allocations
from recon_assets.fifo.service import allocate_symbols
from recon_assets.ledger import versions
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.fifo_history.scenarios import demo_backfill, order


def _text(frame) -> list[list[str]]:
    return [[str(v) for v in frame[c].tolist()] for c in frame.columns]


def test_columnar_read_holds_the_same_values(ledger_url) -> None:
    history = demo_backfill(ledger_url)
    with history.store().connect() as conn:
        plain = versions.read_allocations(conn, 2)
        columnar = versions.read_allocations(conn, 2, columnar=True)
    assert list(plain.columns) == list(columnar.columns) and len(plain) == len(columnar) > 0
    for column in ("allocated_size", "buy_price", "cost_basis_usd", "pnl_usd"):
        for a, b in zip(plain[column], columnar[column].astype(object)):
            assert (a is None and b is None) or (a is not None and str(a) == str(b)), column
    assert all(v is None or isinstance(v, Decimal) for v in plain["pnl_usd"])


def test_daily_report_is_the_same_however_it_is_summed(ledger_url) -> None:
    history = demo_backfill(ledger_url)
    with history.store().connect() as conn:
        for version in (1, 2):
            plain = daily_pnl(versions.read_allocations(conn, version))
            columnar = daily_pnl(versions.read_allocations(conn, version, columnar=True))
            assert _text(columnar) == _text(plain) and len(plain) > 0
            sums = versions.daily_sums(conn, version)
            if sums is not None:  # PostgreSQL sums in SQL
                assert _text(daily_report(sums)) == _text(plain)


def test_diff_is_the_same_on_arrow_and_decimal_frames(ledger_url) -> None:
    """Between the two demo versions, and against a copy of version 2 with random rows
    dropped, sizes nudged by 1e-8 and a buy removed."""
    history = demo_backfill(ledger_url)
    with history.store().connect() as conn:
        frames = {(v, columnar): versions.read_allocations(conn, v, columnar=columnar)
                  for v in (1, 2) for columnar in (False, True)}
    expected = to_json(diff_versions(frames[1, False], frames[2, False]))
    assert expected["counts"]["newly_matched"] > 0
    for old_form in (False, True):
        for new_form in (False, True):
            got = to_json(diff_versions(frames[1, old_form], frames[2, new_form]))
            assert got == expected, (old_form, new_form)
    rng = random.Random(7)
    damaged = frames[2, False].drop(index=rng.sample(range(len(frames[2, False])), 3))
    damaged = damaged.reset_index(drop=True)
    for i in rng.sample(range(len(damaged)), 3):
        damaged.at[i, "allocated_size"] += Decimal("0.00000001")
    damaged.at[0, "buy_order_id"] = None
    expected = to_json(diff_versions(frames[2, False], damaged))
    assert expected["counts"]["changed_sells"] > 0
    assert to_json(diff_versions(frames[2, True], damaged)) == expected


def test_diff_in_the_database_is_the_diff_of_the_rows(ledger_url) -> None:
    """diff_stored (the full join in PostgreSQL; SQLite compares the rows) gives what
    diff_versions gives on the Decimal rows, for the demo's two versions in both directions,
    for a version against itself, and after rows of version 2 are damaged in place."""
    from sqlalchemy import text

    from recon_assets.fifo.service import diff_stored

    history = demo_backfill(ledger_url)
    store = history.store()

    def expected(old: int, new: int) -> dict:
        with store.connect() as conn:
            return to_json(diff_versions(versions.read_allocations(conn, old),
                                         versions.read_allocations(conn, new)))

    for old, new in ((1, 2), (2, 1), (2, 2)):
        with store.connect() as conn:
            assert to_json(diff_stored(conn, old, new)) == expected(old, new), (old, new)
    with store.begin() as conn:  # a size nudged, a piece unmatched, a row gone
        ids = conn.execute(text("SELECT id FROM fifo_allocations WHERE allocation_version = 2 "
                                "AND buy_order_id IS NOT NULL ORDER BY id")).scalars().all()
        conn.execute(text("UPDATE fifo_allocations SET allocated_size = allocated_size "
                          "+ 0.00000001 WHERE id = :i"), {"i": ids[0]})
        conn.execute(text("UPDATE fifo_allocations SET buy_order_id = NULL WHERE id = :i"),
                     {"i": ids[3]})
        conn.execute(text("DELETE FROM fifo_allocations WHERE id = :i"), {"i": ids[5]})
    with store.connect() as conn:
        got = to_json(diff_stored(conn, 1, 2))
    assert got == expected(1, 2) and got["counts"]["changed_sells"] > 0


def test_the_diff_compares_only_symbols_whose_rows_differ(pg_url) -> None:
    """Between a version and one that copied every symbol from it, the join and the passes
    see only the symbols whose rows differ by digest (none, then the one damaged), and all
    of them again once an order id of those rows is under another symbol too; the diff is
    always the diff of the rows."""
    from sqlalchemy import event, text

    from recon_assets.fifo.service import compute_version, diff_stored

    history = demo_backfill(pg_url)
    store = history.store()
    assert compute_version(store).version == 3  # a copy of version 2, symbol by symbol
    statements: list[tuple[str, dict]] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, params, *_a: statements.append((sql, params)))

    def compared() -> tuple[dict, list | None]:
        statements.clear()
        with store.connect() as conn:
            got = to_json(diff_stored(conn, 2, 3))
            expected = to_json(diff_versions(versions.read_allocations(conn, 2),
                                             versions.read_allocations(conn, 3)))
        assert got == expected
        joins = [p for sql, p in statements if "FULL JOIN" in sql]
        return got, joins[0].get("apart")

    got, apart = compared()
    assert apart == [] and got["counts"]["changed_sells"] == 0
    with store.begin() as conn:
        row, symbol = conn.execute(text(
            "SELECT id, symbol FROM fifo_allocations WHERE allocation_version = 3 "
            "AND buy_order_id IS NOT NULL ORDER BY id LIMIT 1")).one()
        conn.execute(text("UPDATE fifo_allocations SET allocated_size = allocated_size "
                          "+ 0.00000001 WHERE id = :i"), {"i": row})
    got, apart = compared()
    assert apart == [symbol] and got["counts"]["changed_sells"] == 1
    with store.begin() as conn:  # that row's buy becomes an order of another symbol's rows
        other = conn.execute(text(
            "SELECT buy_order_id FROM fifo_allocations WHERE allocation_version = 3 "
            "AND buy_order_id IS NOT NULL AND symbol <> :s LIMIT 1"), {"s": symbol}).scalar()
        conn.execute(text("UPDATE fifo_allocations SET buy_order_id = :b WHERE id = :i"),
                     {"b": other, "i": row})
    got, apart = compared()
    assert apart is None and got["counts"]["changed_sells"] == 1


@pytest.mark.parametrize("table", ["sqlite", "postgresql", "bottrader"])
def test_a_symbol_read_as_columns_allocates_as_its_decimals_do(request, table) -> None:
    """A step reads its symbol into Arrow columns and allocates from them: the rows, the
    notes (which quote a sell's size as written: "3.50", or a float's shortest form) and the
    judgment are those of the same orders read as Decimals, on our tables and BotTrader's."""
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url",
                                   "bottrader": "bottrader_pg_url"}[table])
    orders = [order("b1", "BTC-USD", "buy", 1, "100.10", "1.25", "0.50"),
              order("s1", "BTC-USD", "sell", 2, "110", "3.50", "1"),
              order("b2", "BTC-USD", "buy", 3, "99.5", "0.1"),
              order("s2", "BTC-USD", "sell", 4, "120.000", "0.3", "0.01"),
              order("b3", "ETH-USD", "buy", 1, "2000", "2")]
    seed_trade_records(url, orders)
    store = LedgerStore(url)
    part = allocate_symbols(store, ["BTC-USD"])
    as_decimals = store.read_trades(symbols=["BTC-USD"]).trades
    assert all(isinstance(v, Decimal) for v in as_decimals["size"])
    pd.testing.assert_frame_equal(part.allocations, allocate(as_decimals))
    notes = [n for n in part.allocations["notes"] if n]
    size = "3.5" if table == "bottrader" else "3.50"  # double precision keeps no zeros
    assert notes == [f"UNMATCHED: 2.25 of {size} not covered by earlier buys",
                     "UNMATCHED: 0.2 of 0.3 not covered by earlier buys"]
    columns = store.read_trades(symbols=["BTC-USD"], columnar=True).trades
    assert isinstance(columns["size"].dtype, pd.ArrowDtype) or table == "sqlite"
    assert (recorded_form(validate_allocations(part.allocations, columns, normalized=True))
            == recorded_form(validate_allocations(part.allocations, as_decimals,
                                                  normalized=True)))
    store.dispose()
