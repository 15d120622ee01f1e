"""Validation judges a symbol's rows once per state: what it recorded is reused only for the
same rows over the same orders, and the results are always those of judging the whole version
at once (SQLite and older servers judge the whole version, and record nothing)."""

from __future__ import annotations

from sqlalchemy import func, select, text

from recon_assets.fifo.service import resolve_version
from recon_assets.ledger.schema import fifo_check_results
from recon_assets_tests.fifo_history.scenarios import demo_backfill, judged


def recorded(store) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.count()).select_from(fifo_check_results)).scalar()


def failing(results, rule: str) -> int:
    return next(r.failing_count for r in results if r.name == rule)


def test_each_state_is_judged_once_and_the_results_are_the_whole_versions(ledger_url):
    history = demo_backfill(ledger_url)
    store = history.store()
    for version in (1, 2):
        for strict in (False, True):
            judged(store, version, strict=strict)
    postgres = store.dialect == "postgresql"
    symbols = len(resolve_version(store, 2).symbols)
    assert recorded(store) == (2 * symbols if postgres else 0) > 0 or not postgres
    _results, said = judged(store, 2)
    if postgres:
        assert said == [f"version 2: {symbols} of {symbols} symbols judged before (the same "
                        "rows over the same orders), 0 read and judged now"]


def test_rows_changed_in_place_are_judged_again(pg_url):
    history = demo_backfill(pg_url)
    store = history.store()
    judged(store, 2)
    with store.begin() as conn:
        ids = conn.execute(text("SELECT id FROM fifo_allocations WHERE allocation_version = 2 "
                                "AND buy_order_id IS NOT NULL ORDER BY id")).scalars().all()
        # the same value written with a ninth place: worded apart, so judged again
        conn.execute(text("UPDATE fifo_allocations SET pnl_usd = round(pnl_usd, 9) "
                          "WHERE id = :i"), {"i": ids[-1]})
    _results, said = judged(store, 2)
    assert "1 read and judged now" in said[0]
    with store.begin() as conn:  # a PnL off by 1e-8
        conn.execute(text("UPDATE fifo_allocations SET pnl_usd = pnl_usd + 0.00000001 "
                          "WHERE id = :i"), {"i": ids[0]})
    results, said = judged(store, 2)
    assert failing(results, "arithmetic") >= 1
    assert failing(results, "total_pnl_consistent") == 1  # the sum against the reported total
    assert "0 read and judged now" not in said[0]


def test_a_ledger_order_changed_since_is_judged_again(pg_url):
    history = demo_backfill(pg_url)
    store = history.store()
    results, _said = judged(store, 2)
    assert failing(results, "sells_fully_allocated") == 0
    with store.begin() as conn:
        sell = conn.execute(text("SELECT sell_order_id FROM fifo_allocations "
                                 "WHERE allocation_version = 2 ORDER BY id LIMIT 1")).scalar()
        conn.execute(text("UPDATE trade_records SET size = size * 2 WHERE order_id = :o"),
                     {"o": sell})
    results, said = judged(store, 2)
    assert failing(results, "sells_fully_allocated") == 1
    assert "1 read and judged now" in said[0]


def test_a_row_naming_another_symbols_order_is_judged_with_the_whole_version(pg_url):
    history = demo_backfill(pg_url)
    store = history.store()
    judged(store, 2)
    before = recorded(store)
    with store.begin() as conn:  # a buy of one symbol given to another symbol's sell
        row, symbol = conn.execute(text(
            "SELECT id, symbol FROM fifo_allocations WHERE allocation_version = 2 "
            "AND buy_order_id IS NOT NULL ORDER BY id LIMIT 1")).one()
        other = conn.execute(text("SELECT order_id FROM trade_records WHERE side = 'buy' "
                                  "AND symbol <> :s LIMIT 1"), {"s": symbol}).scalar()
        conn.execute(text("UPDATE fifo_allocations SET buy_order_id = :b WHERE id = :i"),
                     {"b": other, "i": row})
    results, said = judged(store, 2)
    shown = next(r for r in results if r.name == "references_exist").failing
    assert any("buy is another symbol in the ledger" in f["detail"] for f in shown)
    assert said == [] and recorded(store) == before  # judged whole, nothing recorded


def test_a_version_is_judged_a_batch_of_symbols_at_a_time(pg_url, monkeypatch):
    """With batches smaller than a symbol, every symbol is read and judged on its own, and
    the results are still the whole version's."""
    from recon_assets.fifo import validation

    history = demo_backfill(pg_url)
    store = history.store()
    monkeypatch.setattr(validation, "_BATCH_ROWS", 1)
    reads: list[list[str]] = []
    read = validation.versions.read_allocations
    monkeypatch.setattr(validation.versions, "read_allocations",
                        lambda conn, version, symbols=None, **kw:
                        reads.append(list(symbols or [])) or read(conn, version, symbols, **kw))
    judged(store, 2)
    symbols = resolve_version(store, 2).symbols
    assert reads[:len(symbols)] == [[s] for s in sorted(symbols)]
