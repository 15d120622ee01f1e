"""Row ``fifo_incremental``: a new version after one order changed, against a full version.

The ledger is ``fifo_version``'s (1,000,000 orders over 20 symbols on PostgreSQL;
``--quick``: 10,000). Baseline: ``compute_version`` with no version before it, so every
symbol is read and allocated. Then the price of one order of one symbol changes, and the
measured ``compute_version`` recomputes that symbol only and copies the other 19 symbols'
rows in the database. It is then checked against a full recompute of the same ledger (not
measured): the same rows, every column as text (so scale too), and the same log figures.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from sqlalchemy import text

from benchmarks import fifo
from benchmarks.checks import PEAK_MIB, check
from benchmarks.measure import measure
from benchmarks.rows import result
from benchmarks.rows.fifo_version import SEED, SYMBOLS, _differences
from benchmarks.scratch import load_trades, scratch_store
from recon_assets.fifo.service import (allocate_symbols, compute_version, plan_version,
                                       write_computed)
from recon_assets.ledger import versions

#: The incremental version may take at most this share of the full one's time.
TARGET_SHARE = 0.15
LOGGED = ("trade_count", "allocation_count", "unmatched_count", "total_pnl_usd",
          "skipped_rows")


def _full_recompute(store) -> int:
    """A version with nothing carried (the reference the incremental one must equal)."""
    plan = plan_version(store)
    plan = replace(plan, symbols=plan.scope, carry=None)
    part = allocate_symbols(store, plan.symbols, exclude=plan.bad_order_ids)
    return write_computed(store, plan, [part]).version


def run(quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 1_000_000
    with scratch_store() as store:
        load_trades(store, fifo.make_trades(n, SYMBOLS, SEED))
        with measure() as base:
            full = compute_version(store)
        with store.begin() as conn:
            symbol, order_id = conn.execute(text(
                "SELECT symbol, order_id FROM trade_records WHERE side = 'buy' "
                "ORDER BY symbol, order_id LIMIT 1")).one()
            conn.execute(text("UPDATE trade_records SET price = price * 1.01 "
                              "WHERE order_id = :o"), {"o": order_id})
        copy_seconds = 0.0
        original = versions.copy_symbols

        def timed_copy(*args, **kwargs) -> None:
            nonlocal copy_seconds
            started = time.perf_counter()
            try:
                original(*args, **kwargs)
            finally:
                copy_seconds += time.perf_counter() - started

        versions.copy_symbols = timed_copy
        try:
            with measure() as project:
                incremental = compute_version(store)
        finally:
            versions.copy_symbols = original
        reference = _full_recompute(store)
        differences = _differences(store, incremental.version, reference)
        with store.connect() as conn:
            ours, theirs = (versions.get_version(conn, v) for v in (incremental.version,
                                                                   reference))
        basis = ours.per_symbol or {}
        same_log = all(getattr(ours, f) == getattr(theirs, f) for f in LOGGED)
    share = project.seconds / base.seconds
    return result(
        "fifo_incremental", f"incremental compute_version on PostgreSQL, {n:,} orders, "
        f"1 order changed in 1 of {SYMBOLS} symbols",
        size={"orders": n, "allocations": incremental.allocation_count, "symbols": SYMBOLS},
        project=project,
        baseline="compute_version of the same ledger with no version before it (every "
                 "symbol read and allocated)",
        baseline_phase=base,
        checks=[check("share of the full version's time", round(share, 3), "<=",
                      TARGET_SHARE),
                check("peak", round(project.peak_rss_mib), "<", PEAK_MIB, " MiB"),
                check("symbols recomputed", SYMBOLS - len(basis.get("carried", [])), "==", 1),
                check("same rows as a full recompute", differences, "==", 0),
                check("same log figures as a full recompute", same_log, "==", True)],
        details={"changed_symbol": symbol, "changed_order": order_id,
                 "carried_from": basis.get("carried_from"),
                 "carried_symbols": len(basis.get("carried", [])),
                 "copy_seconds": round(copy_seconds, 3),
                 "rest_seconds": round(project.seconds - copy_seconds, 3),
                 "full_version": full.version, "allocations": incremental.allocation_count,
                 "differences": differences})
