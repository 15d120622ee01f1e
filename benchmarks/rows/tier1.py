"""Row ``tier1``: reconciliation tier 1 on a 200,000-order ledger with 10 unmatched sells.

The exchange (the simulator, its own process, 30 requests/s) has 200,010 orders (250,013
fills) over 20 symbols and a year; the PostgreSQL ledger lacks 10 buys on 10 different symbols,
so FIFO version 1 (computed in setup) has exactly 10 unmatched sells. Measured: ``run_tier``
(tier 1, wall time and exchange requests) with the client paced at the key's limit; it must
find the 10 missing buys. Baseline: the naive tier 1, which pages through every fill of the
affected symbols (no window) and looks up each order in the ledger, through the same client.
``--quick``: 2,000 orders.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from benchmarks.checks import check
from benchmarks.exchange import RATE_LIMIT, simulator
from benchmarks.history import bot_history
from benchmarks.measure import measure
from benchmarks.rows import result
from benchmarks.scratch import load_trades, scratch_store
from recon_assets.exchange.client import ExchangeClient
from recon_assets.exchange.models import normalize_fills
from recon_assets.fifo.service import compute_version
from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets.reconcile.service import run_tier

MISSING_BUYS = 10
CLIENT_RPS = float(RATE_LIMIT)


def counting(client: ExchangeClient, counts: Counter[str]) -> ExchangeClient:
    """Count the client's requests (retries too) per kind of listing: a symbol's time window,
    or fills of given order ids."""
    listing = client.iter_fills

    def iter_fills(*args: Any, **kwargs: Any) -> Iterator[list[dict]]:
        before = client.stats.requests
        try:
            yield from listing(*args, **kwargs)
        finally:
            kind = "by_order_ids" if kwargs.get("order_ids") else "by_window"
            counts[kind] += client.stats.requests - before

    client.iter_fills = iter_fills  # type: ignore[method-assign]
    return client


def run(quick: bool) -> dict[str, Any]:
    n_ledger = 2_000 if quick else 200_000
    history = bot_history(n_ledger + MISSING_BUYS, seed=2, missing_buys=MISSING_BUYS)
    with tempfile.TemporaryDirectory() as tmp, simulator(history.fills, Path(tmp)) as sim, \
            scratch_store() as store:
        load_trades(store, history.ledger)
        version = compute_version(store)
        kinds: Counter[str] = Counter()
        with measure() as project:
            found = run_tier(store, lambda: counting(sim.client(CLIENT_RPS), kinds), tier=1,
                             logs_dir=Path(tmp) / "logs")
        affected = sorted(set(found.unmatched["symbol"]))
        with sim.client(CLIENT_RPS) as client, measure() as base:
            ledger_ids = set(store.read_trades().trades["order_id"])
            records = [f for page in client.iter_fills(product_ids=affected) for f in page]
            fills, _ = normalize_fills(records)
            orders = aggregate_fills(fills)
            naive_missing = set(orders.loc[~orders["order_id"].isin(ledger_ids), "order_id"])
            base_requests = client.stats.requests
    missing = found.diff.missing_orders
    missing_buys = set(missing.loc[missing["side"] == "buy", "order_id"])
    right = missing_buys == set(history.missing_buy_ids) and len(missing) == MISSING_BUYS
    return result(
        "tier1", f"tier 1, {n_ledger:,}-order ledger, {MISSING_BUYS} unmatched sells",
        size={"ledger_orders": n_ledger, "exchange_fills": len(history.fills),
              "unmatched_sells": version.unmatched_count, "symbols": len(history.symbols)},
        project=project,
        baseline="naive tier 1: every fill of the affected symbols, no window",
        baseline_phase=base,
        checks=[check("wall time", round(project.seconds, 3), "<", 5.0, " s"),
                check("finds the missing buys", right, "==", True)],
        details={"exchange_requests": found.exchange_requests,
                 "requests_by_kind": dict(kinds),
                 "client_requests_per_second": CLIENT_RPS, "server_rate_limit": RATE_LIMIT,
                 "affected_symbols": len(affected), "missing_found": len(missing),
                 "baseline_requests": base_requests, "baseline_fills": len(records),
                 "baseline_found_same": naive_missing == set(missing["order_id"])})
