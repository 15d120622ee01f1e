"""Incremental versions on real SQLite and PostgreSQL ledgers: a version recomputes only the
symbols whose orders changed since the version before it of the same scope and copies the
others' rows, and is row for row (and in its log row) what a full recompute writes."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import dagster as dg
import pytest
from sqlalchemy import delete, insert, select, text, update

from recon_assets.definitions import build_definitions
from recon_assets.errors import VersionError
from recon_assets.fifo import allocate
from recon_assets.fifo.service import (SymbolAllocations, allocate_symbols, compute_version,
                                       plan_version, write_computed)
from recon_assets.ledger import versions
from recon_assets.ledger.schema import fifo_allocations, fifo_computation_log, trade_records
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import load_settings
from recon_assets_tests.conftest import run_version_partition, seed_trade_records

SYMBOLS = ["ADA-USD", "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: Columns that differ between two versions of the same allocations by design.
PER_VERSION = {"id", "allocation_version", "allocation_batch_id", "allocation_time"}
#: Log columns a full recompute and an incremental version must agree on.
LOGGED = ["trade_count", "allocation_count", "unmatched_count", "symbols", "total_pnl_usd",
          "skipped_rows"]


def random_order(rng: random.Random, order_id: str, symbol: str) -> dict:
    return {"order_id": order_id, "symbol": symbol, "side": rng.choice(["buy", "buy", "sell"]),
            "order_time": START + timedelta(minutes=rng.randrange(0, 10_000)),
            "price": Decimal(rng.randrange(1, 10**6)).scaleb(-rng.randrange(0, 5)),
            "size": Decimal(rng.randrange(1, 10**5)).scaleb(-rng.randrange(0, 7)),
            "total_fees_usd": Decimal(rng.randrange(0, 10**4)).scaleb(-rng.randrange(0, 9))}


def rows_as_text(store: LedgerStore, version: int) -> list[tuple]:
    """Every column but the per-version ones, as the database shows it as text (so the scale
    of a decimal counts), in a fixed order."""
    columns = [c.name for c in fifo_allocations.columns if c.name not in PER_VERSION]
    cast = ", ".join(f"CAST({c} AS TEXT)" for c in columns)
    with store.connect() as conn:
        rows = conn.execute(text(f"SELECT {cast} FROM fifo_allocations "
                                 "WHERE allocation_version = :v"), {"v": version}).all()
    return sorted(tuple("\0" if v is None else v for v in row) for row in rows)


def logged(store: LedgerStore, version: int) -> tuple[dict, dict]:
    """A version's log row (the columns in LOGGED, money as text) and its per_symbol."""
    with store.connect() as conn:
        row = conn.execute(select(fifo_computation_log).where(
            fifo_computation_log.c.allocation_version == version)).mappings().one()
    figures = {c: row[c] for c in LOGGED}
    figures["total_pnl_usd"] = str(figures["total_pnl_usd"])
    return figures, row["per_symbol"]


def full_version(store: LedgerStore, **settings) -> int:
    """A version recomputed from scratch as before versions were incremental (every symbol
    read and allocated at once, nothing carried), as a reference."""
    plan = plan_version(store, skip_bad_rows=settings.get("skip_bad_rows", False))
    plan = replace(plan, symbols=plan.scope, carry=None)
    normalized = store.read_trades(symbols=list(plan.symbols))
    trades = normalized.trades[~normalized.trades["order_id"].isin(plan.bad_order_ids)]
    counts = trades["symbol"].value_counts()
    part = SymbolAllocations(plan.symbols, {s: int(counts.get(s, 0)) for s in plan.symbols},
                             allocate(trades), normalized.problems)
    return write_computed(store, plan, [part], **settings).version


def drop_version(store: LedgerStore, version: int) -> None:
    with store.begin() as conn:
        conn.execute(delete(fifo_allocations).where(
            fifo_allocations.c.allocation_version == version))
        conn.execute(delete(fifo_computation_log).where(
            fifo_computation_log.c.allocation_version == version))


def change(store: LedgerStore, rng: random.Random, symbol: str, serial: int) -> None:
    """Insert, delete or edit one order of ``symbol`` (sometimes making a bad row)."""
    table = trade_records
    with store.begin() as conn:
        ids = conn.execute(select(table.c.order_id).where(table.c.symbol == symbol)
                           .order_by(table.c.order_id)).scalars().all()
        what = rng.choice(["insert", "delete", "edit", "edit", "bad"])
        if what == "insert" or not ids:
            conn.execute(insert(table).values(random_order(rng, f"new-{serial}", symbol)))
        elif what == "delete":
            conn.execute(delete(table).where(table.c.order_id == rng.choice(ids)))
        else:
            fresh = random_order(rng, "", symbol)
            field = rng.choice(["side", "order_time", "price", "size", "total_fees_usd"])
            value = Decimal("-1") if what == "bad" else fresh[field]
            if what == "bad":
                field = "size"
            conn.execute(update(table).where(table.c.order_id == rng.choice(ids))
                         .values({field: value}))


@pytest.mark.parametrize("seed", [0, 1])
def test_incremental_versions_equal_full_recomputes(ledger_url, seed):
    rng = random.Random(seed)
    seed_trade_records(ledger_url, [random_order(rng, f"o-{s}-{i}", s)
                                    for s in SYMBOLS for i in range(rng.randrange(8, 30))])
    store = LedgerStore(ledger_url)
    previous = compute_version(store, skip_bad_rows=True)
    assert logged(store, previous.version)[1]["carried"] == []  # nothing to carry from
    carried_in_all = 0
    for serial in range(8):
        for symbol in rng.sample(SYMBOLS, rng.randrange(1, 3)):
            change(store, rng, symbol, serial)
        if serial == 5:  # a row without a symbol: a new ledger problem, nothing is carried
            with store.begin() as conn:
                conn.execute(insert(trade_records).values(random_order(rng, "blank", " ")))
        before = logged(store, previous.version)[1]["symbols"]
        incremental = compute_version(store, skip_bad_rows=True)
        reference = full_version(store, skip_bad_rows=True)
        assert rows_as_text(store, incremental.version) == rows_as_text(store, reference)
        (ours, basis), (full, full_basis) = (logged(store, incremental.version),
                                             logged(store, reference))
        assert ours == full
        figures = ["fingerprint", "trade_count", "allocation_count", "unmatched_count",
                   "pnl_usd"]
        assert ({s: [r[f] for f in figures] for s, r in basis["symbols"].items()}
                == {s: [r[f] for f in figures] for s, r in full_basis["symbols"].items()})
        assert full_basis["carried"] == [] and basis["carried_from"] in (None,
                                                                         previous.version)
        now = store.fingerprint().by_symbol
        assert all(before[s]["fingerprint"] == now[s] for s in basis["carried"])
        carried_in_all += len(basis["carried"])
        if serial == 5:
            assert basis["carried"] == []
        drop_version(store, reference)
        previous = incremental
    assert carried_in_all >= 8  # most symbols were unchanged in most rounds


def two_symbols(ledger_url: str) -> LedgerStore:
    """BTC-USD and ETH-USD, sizes with two decimals."""
    day = timedelta(days=1)
    seed_trade_records(ledger_url, [
        {"order_id": f"{s[0]}{i}", "symbol": s, "side": side, "order_time": START + i * day,
         "price": Decimal(price), "size": Decimal("0.25"), "total_fees_usd": Decimal("0.01")}
        for s in ("BTC-USD", "ETH-USD")
        for i, (side, price) in enumerate([("buy", "100"), ("buy", "101.5"), ("sell", "103")])])
    return LedgerStore(ledger_url)


def set_size(store: LedgerStore, order_id: str, size: str) -> None:
    with store.begin() as conn:
        conn.execute(update(trade_records).where(trade_records.c.order_id == order_id)
                     .values(size=Decimal(size)))


def test_carried_rows_take_the_scale_a_full_recompute_gives(ledger_url):
    store = two_symbols(ledger_url)
    compute_version(store)
    for size in ("0.250001", "0.25"):  # ETH's sizes get 6 places, then 2 again
        set_size(store, "E2", size)
        incremental = compute_version(store)
        basis = logged(store, incremental.version)[1]
        assert basis["carried"] == ["BTC-USD"]
        assert basis["scales"]["allocated_size"] == len(size) - 2
        reference = full_version(store)
        assert rows_as_text(store, incremental.version) == rows_as_text(store, reference)
        assert logged(store, incremental.version)[0] == logged(store, reference)[0]
        drop_version(store, reference)


def test_only_a_changed_symbol_gets_a_step(ledger_url, monkeypatch):
    from recon_assets.exchange.demo import demo_history

    seed_trade_records(ledger_url, demo_history().ledger_orders)
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    job = build_definitions(load_settings()).resolve_job_def("fifo_job")
    store = LedgerStore(ledger_url)
    with dg.instance_for_test() as instance:
        run_version_partition(job, 1, instance)
        with store.begin() as conn:
            conn.execute(text("UPDATE trade_records SET price = price + 1 WHERE order_id = ("
                              "SELECT min(order_id) FROM trade_records "
                              "WHERE symbol = 'ETH-USD')"))
        result = run_version_partition(job, 2, instance)
        forced = run_version_partition(job, 3, instance, run_config={"ops": {
            "fifo_allocations": {"config": {"force": True}}}})
    steps = {e.step_key for e in result.all_events if e.is_step_success}
    assert {s for s in steps if "fifo_allocate_symbol" in s} == {
        "fifo_allocations.fifo_allocate_symbol[0_ETH_USD]"}
    basis = logged(store, 2)[1]
    assert (basis["carried_from"], basis["carried"]) == (1, ["BTC-USD", "SOL-USD"])
    forced_steps = {e.step_key for e in forced.all_events if e.is_step_success}
    assert len({s for s in forced_steps if "fifo_allocate_symbol" in s}) == 3
    assert logged(store, 3)[1]["carried"] == []  # force recomputes every symbol
    assert rows_as_text(store, 3) == rows_as_text(store, 2)
    reference = full_version(store)
    assert rows_as_text(store, 2) == rows_as_text(store, reference)
    assert logged(store, 2)[0] == logged(store, reference)[0]


def test_rows_come_only_from_the_immediate_predecessor_of_the_same_scope(ledger_url):
    store = two_symbols(ledger_url)
    compute_version(store)  # 1
    compute_version(store, symbols=["BTC-USD"])  # 2: another scope, not a predecessor of 3
    set_size(store, "E2", "0.5")
    assert logged(store, compute_version(store).version)[1]["carried_from"] == 1  # 3
    with store.begin() as conn:
        versions.set_status(conn, 3, versions.STATUS_FAILED)
    set_size(store, "E2", "0.75")
    assert logged(store, compute_version(store).version)[1]["carried"] == []  # 4: 3 failed
    set_size(store, "E2", "0.5")
    # Replacing 5 (the newest) copies from 4, the version before it, never from 5 itself.
    assert logged(store, compute_version(store).version)[1]["carried_from"] == 4  # 5
    set_size(store, "E2", "0.25")
    replaced_5 = compute_version(store, version=5, replace=True)
    assert logged(store, replaced_5.version)[1]["carried_from"] == 4
    with store.begin() as conn:  # a version written before per_symbol was kept
        conn.execute(update(fifo_computation_log).where(
            fifo_computation_log.c.allocation_version == 5).values(per_symbol=None))
    assert logged(store, compute_version(store).version)[1]["carried"] == []


def test_a_version_written_meanwhile_stops_a_planned_copy(ledger_url):
    store = two_symbols(ledger_url)
    compute_version(store)
    set_size(store, "E2", "0.5")
    plan = plan_version(store)
    assert plan.symbols == ("ETH-USD",) and plan.carry.version == 1
    part = allocate_symbols(store, plan.symbols, exclude=plan.bad_order_ids)
    compute_version(store)  # 2, from the same ledger, written first
    with pytest.raises(VersionError, match="no longer the version before it"):
        write_computed(store, plan, [part])
    with store.connect() as conn:
        assert versions.next_version(conn) == 3  # nothing written


def test_a_ledger_at_revision_0002_gets_per_symbol_and_recomputes_in_full(ledger_url):
    from recon_assets import migrations

    store = two_symbols(ledger_url)
    compute_version(store)
    with store.begin() as conn:  # as revision 0002 left the ledger
        for table in ("fifo_computation_log", "fifo_staging_runs"):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN per_symbol"))
        conn.execute(text(f"UPDATE {migrations.VERSION_TABLE} "
                          "SET version_num = '0002_backfill_requests_reopen'"))
    store.dispose()
    store = LedgerStore(ledger_url)
    store.ensure_schema()
    with store.connect() as conn:
        assert migrations.current_revision(conn) == "0004_allocations_version_key"
        assert versions.get_version(conn, 1).per_symbol is None
    second = compute_version(store)
    assert logged(store, second.version)[1]["carried"] == []  # 1 kept no per_symbol
    assert logged(store, compute_version(store).version)[1]["carried"] == ["BTC-USD",
                                                                           "ETH-USD"]


def test_a_ledger_at_revision_0003_gets_the_version_first_key_and_keeps_its_rows(ledger_url):
    """Revision 0004 swaps fifo_allocations' unique (sell, buy, version) key for (version,
    sell, buy): the rows stay, the same rows stay unique, and the next version writes."""
    from alembic import command
    from sqlalchemy import inspect

    from recon_assets import migrations
    from recon_assets.errors import LedgerError

    store = two_symbols(ledger_url)
    compute_version(store)
    with store.begin() as conn:  # back to what revision 0003 left (the sell-first key)
        command.downgrade(migrations._config(conn), "0003_per_symbol")

    def keys() -> dict[str, list[str]]:
        with store.connect() as conn:
            return {u["name"]: u["column_names"]
                    for u in inspect(conn).get_unique_constraints("fifo_allocations")}

    assert keys() == {"uq_fifo_allocations_sell_buy_version": [
        "sell_order_id", "buy_order_id", "allocation_version"]}
    store.dispose()
    store = LedgerStore(ledger_url)
    store.ensure_schema()
    assert keys() == {"uq_fifo_allocations_version_sell_buy": [
        "allocation_version", "sell_order_id", "buy_order_id"]}
    with store.connect() as conn:
        rows = versions.read_allocations(conn, 1)
        assert migrations.current_revision(conn) == "0004_allocations_version_key"
    assert len(rows) == logged(store, 1)[0]["allocation_count"] > 0
    matched = rows[rows["buy_order_id"].notna()].iloc[0]  # NULL buys are never equal
    twice = {c: matched[c] for c in rows.columns if c != "id"}
    twice["allocation_version"] = 1  # a Python int (numpy's binds as a blob on SQLite)
    with pytest.raises(LedgerError, match="(?i)unique"), store.begin() as conn:
        conn.execute(insert(fifo_allocations).values(**twice))
    set_size(store, "E2", "0.5")
    assert compute_version(store).version == 2
