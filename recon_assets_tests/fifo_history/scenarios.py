"""Histories for the version-history tests: small hand-made ledgers whose FIFO outcome is known
by construction, and the demo bot history (600 orders with missing buys) in a real ledger."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from recon_assets.exchange.demo import demo_history
from recon_assets.fifo.rules import validate_allocations
from recon_assets.fifo.service import (VersionSummary, compute_version, load_version,
                                       resolve_version)
from recon_assets.fifo.validation import validate_version
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records

DAY0 = pd.Timestamp("2024-01-01", tz="UTC")


def order(order_id: str, symbol: str, side: str, day: float, price: str, size: str,
          fee: str = "0") -> dict[str, Any]:
    return {"order_id": order_id, "symbol": symbol, "side": side,
            "order_time": (DAY0 + pd.Timedelta(days=day)).to_pydatetime(),
            "price": Decimal(price), "size": Decimal(size), "total_fees_usd": Decimal(fee)}


#: BTC: s2 finds no inventory until the missing buy b2 is backfilled; ETH is untouched by it.
BASE = [
    order("b1", "BTC-USD", "buy", 1, "100", "1", "1"),
    order("s1", "BTC-USD", "sell", 2, "110", "1", "1"),
    order("s2", "BTC-USD", "sell", 4, "120", "0.5"),
    order("b3", "BTC-USD", "buy", 5, "130", "1"),
    order("s3", "BTC-USD", "sell", 6, "140", "0.5"),
    order("e1", "ETH-USD", "buy", 1, "10", "2", "0.02"),
    order("e2", "ETH-USD", "sell", 3, "12", "1", "0.01"),
]
MISSING_B2 = order("b2", "BTC-USD", "buy", 3, "105", "0.5", "0.5")
#: A buy older than b3: backfilled, it takes s3 from b3 although s3 was fully matched.
MISSING_B0 = order("b0", "BTC-USD", "buy", 4.5, "90", "0.25")


@dataclass
class Backfilled:
    """A real ledger before and after backfilling missing buys, with a version of each."""

    url: str
    orders: list[dict[str, Any]]
    missing: list[dict[str, Any]]
    before: VersionSummary
    after: VersionSummary

    @property
    def missing_ids(self) -> set[str]:
        return {o["order_id"] for o in self.missing}

    def store(self) -> LedgerStore:
        return LedgerStore(self.url)


def backfill_history(url: str, ledger: list[dict[str, Any]], missing: list[dict[str, Any]]
                     ) -> Backfilled:
    """Seed ``ledger``, compute a version, insert ``missing`` (a backfill), compute again."""
    seed_trade_records(url, ledger)
    store = LedgerStore(url)
    try:
        before = compute_version(store)
        seed_trade_records(url, missing)
        after = compute_version(store)
    finally:
        store.dispose()
    return Backfilled(url, ledger + missing, missing, before, after)


def demo_backfill(url: str) -> Backfilled:
    """The demo history: the ledger without its lost buys, then with them."""
    history = demo_history()
    missing = [o for o in history.orders if o["order_id"] in set(history.missing_buy_ids)]
    return backfill_history(url, history.ledger_orders, missing)


def _places(detail: str) -> str:
    """A detail with its decimals' trailing zeros dropped: a whole version read at once shows
    every value at its column's most places, a symbol's rows at their own."""
    return re.sub(r"(\d)\.(\d*?)0+(?!\d)", lambda m: m[1] + ("." + m[2] if m[2] else ""),
                  detail)


def _shown(results) -> list:
    return [(r.name, r.passed, r.severity, r.blocking, r.failing_count, r.metadata,
             sorted((str(f["sell_order_id"]), str(f["buy_order_id"]), str(f["symbol"]),
                     _places(f["detail"])) for f in r.failing)) for r in results]


def judged(store, version: int, *, strict: bool = False) -> tuple[list, list[str]]:
    """validate_version's results (checked against the whole version judged at once) and
    what it logged."""
    info = resolve_version(store, version)
    said: list[str] = []
    results, _fingerprint = validate_version(store, info, strict=strict, log=said.append)
    allocations, trades = load_version(store, info)
    whole = validate_allocations(allocations, trades, reported_total_pnl=info.total_pnl_usd,
                                 strict=strict)
    assert _shown(results) == _shown(whole)
    return results, said
