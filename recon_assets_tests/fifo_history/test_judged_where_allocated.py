"""A fanned-out version's symbols are judged in the steps that allocate them, while the
allocations and the orders they were made from are in memory; the judgments are recorded under
the digests of the rows as written and the fingerprint of the orders as read, so the checks do
not read the version back. What they record must be exactly what judging the stored rows
records, and a judgment must never stand for orders other than those it judged."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, text

from recon_assets.exchange.demo import demo_history
from recon_assets.fifo.rules import worded_alike_at_any_scale
from recon_assets.fifo.service import allocate_symbols, plan_version, write_computed
from recon_assets.ledger import staging
from recon_assets.ledger.schema import fifo_check_results
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.fifo_history.scenarios import BASE, MISSING_B2, judged, order


def _fanned_out(store: LedgerStore, run_id: str = "run-1") -> int:
    """A version computed as ``fifo_allocations`` computes it: one judged part per symbol,
    staged and read back, then written."""
    plan = plan_version(store, carry=False)
    with store.begin() as conn:
        staging.stage_plan(conn, run_id, plan)
    for symbol in plan.symbols:
        part = allocate_symbols(store, [symbol], exclude=plan.bad_order_ids, judge=True)
        with store.begin() as conn:
            staging.stage_part(conn, run_id, symbol, part)
    with store.connect() as conn:
        parts = staging.read_parts(conn, run_id, plan.symbols)
    return write_computed(store, plan, parts,
                          finish=lambda conn: staging.discard(conn, [run_id])).version


def _recorded(store: LedgerStore) -> dict[tuple[str, str, str], object]:
    table = fifo_check_results
    with store.connect() as conn:
        return {(s, d, f): r for s, d, f, r in conn.execute(select(
            table.c.symbol, table.c.rows_digest, table.c.ledger_fingerprint, table.c.results))}


def _mixed_ledger(seed: int) -> list[dict]:
    """Random orders over three symbols whose sizes and prices have different decimal places
    (so the version widens some symbols' columns), with sells that find no inventory."""
    rng = random.Random(seed)
    places = {"BTC-USD": (8, 2), "ETH-USD": (3, 4), "SOL-USD": (0, 1)}
    orders = []
    for i in range(60):
        symbol = rng.choice(sorted(places))
        size_places, price_places = places[symbol]
        size = Decimal(rng.randint(1, 5000)).scaleb(-size_places)
        price = Decimal(rng.randint(100, 90000)).scaleb(-price_places)
        fee = str(Decimal(rng.randint(0, 99)).scaleb(-2))
        orders.append(order(f"o{i}", symbol, rng.choice(["buy", "buy", "sell"]), i / 8,
                            str(price), str(size), fee))
    return orders


@pytest.mark.parametrize("ledger", ["demo", "mixed-0", "mixed-1", "mixed-2", "base"])
def test_judgments_made_where_allocated_are_those_of_the_stored_rows(pg_url, ledger):
    orders = (demo_history().ledger_orders if ledger == "demo" else
              BASE if ledger == "base" else _mixed_ledger(int(ledger.split("-")[1])))
    seed_trade_records(pg_url, orders)
    store = LedgerStore(pg_url)
    version = _fanned_out(store)
    made = _recorded(store)
    symbols = {s for s, _d, _f in made}
    assert symbols == set(store.symbol_census()[0])  # every symbol judged where allocated
    results, said = judged(store, version)  # and equal to judging the whole version at once
    assert said == [f"version {version}: {len(symbols)} of {len(symbols)} symbols judged "
                    "before (the same rows over the same orders), 0 read and judged now"]
    with store.begin() as conn:
        conn.execute(delete(fifo_check_results))
    again, said = judged(store, version)
    assert "0 of" in said[0] and _recorded(store) == made
    assert [(r.name, r.passed, r.failing_count, r.failing) for r in again] == [
        (r.name, r.passed, r.failing_count, r.failing) for r in results]
    store.dispose()


def test_a_judgment_stands_for_the_orders_read_not_those_planned(pg_url):
    """The ledger changes between the plan and a symbol's read: the judgment is recorded under
    what was read, so a ledger changed back to the planned orders is judged again."""
    seed_trade_records(pg_url, BASE + [MISSING_B2])
    store = LedgerStore(pg_url)
    plan = plan_version(store, carry=False)
    with store.begin() as conn:
        staging.stage_plan(conn, "run-1", plan)
        conn.execute(text("UPDATE trade_records SET price = 131 WHERE order_id = 'b3'"))
    parts = [allocate_symbols(store, [s], judge=True) for s in plan.symbols]
    version = write_computed(store, plan, parts).version
    read_as = {s: f for s, _d, f in _recorded(store)}
    now = store.fingerprint().by_symbol
    assert read_as["BTC-USD"] == now["BTC-USD"] != plan.symbol_fingerprints["BTC-USD"]
    _results, said = judged(store, version)  # the orders as read: the judgment holds
    assert "0 read and judged now" in said[0]
    with store.begin() as conn:
        conn.execute(text("UPDATE trade_records SET price = 130 WHERE order_id = 'b3'"))
    _results, said = judged(store, version)
    assert "1 read and judged now" in said[0]
    store.dispose()


def test_nothing_is_judged_that_would_not_be_recorded(sqlite_url, pg_url):
    """SQLite or PostgreSQL before 14 (no row digests), bad rows, excluded ids."""
    seed_trade_records(sqlite_url, BASE)
    store = LedgerStore(sqlite_url)
    assert allocate_symbols(store, ["BTC-USD"], judge=True).judgments == {}
    store.dispose()
    bad = order("s9", "BTC-USD", "sell", 9, "150", "0.1")
    bad["price"] = Decimal("-1")
    seed_trade_records(pg_url, BASE + [bad])
    store = LedgerStore(pg_url)
    part = allocate_symbols(store, ["BTC-USD"], judge=True)
    assert part.problems and part.judgments == {}
    assert set(allocate_symbols(store, ["ETH-USD"], judge=True).judgments) == {"ETH-USD"}
    assert allocate_symbols(store, ["ETH-USD"], exclude=frozenset({"x"}),
                            judge=True).judgments == {}
    store.engine.dialect.server_version_info = (13, 12)  # as a PostgreSQL 13 reports itself
    assert allocate_symbols(store, ["ETH-USD"], judge=True).judgments == {}  # no digests
    store.dispose()


def test_a_judgment_whose_failing_rows_name_amounts_is_left_to_the_checks():
    def recorded(**failing: int) -> dict:
        return {name: {"failing_count": failing.get(name, 0), "failing": [], "metadata": {}}
                for name in ("sells_fully_allocated", "arithmetic", "no_unmatched_sells",
                             "no_duplicate_pairs", "references_exist")}

    assert worded_alike_at_any_scale(recorded())
    assert worded_alike_at_any_scale(recorded(no_unmatched_sells=3, no_duplicate_pairs=1))
    assert not worded_alike_at_any_scale(recorded(sells_fully_allocated=1))
    assert not worded_alike_at_any_scale(recorded(arithmetic=2, no_unmatched_sells=1))
    assert not worded_alike_at_any_scale(recorded(references_exist=1))
