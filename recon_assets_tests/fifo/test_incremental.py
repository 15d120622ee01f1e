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
from recon_assets.fifo.service import (SymbolAllocations, compute_version, plan_version,
                                       write_computed)
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
