"""A large, seeded bot history for the exchange rows: Coinbase fills and the bot's ledger.

Per symbol the bot runs cycles: one to three buys, then one sell of everything it bought, so
the position is flat between cycles. Orders are spread evenly over ``days`` days (about 27 a
day per symbol for 200,000 orders on 20 symbols over a year). Every ``split_every``-th order
is filled in two parts at the same price, so fills aggregate back to the order exactly.

The ledger is every order except ``missing_buys`` buys, each on a different symbol, each in a
random cycle: the sell of that cycle is then the one unmatched sell it causes, so tier 1 has
exactly ``missing_buys`` unmatched sells to explain.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from recon_assets.money import decimal_str

END = datetime(2026, 11, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class BotHistory:
    fills: list[dict[str, Any]]
    ledger: pd.DataFrame  # trade_records columns: every order but the missing buys
    missing_buy_ids: list[str]
    symbols: list[str]


def _cycle_sizes(rng: random.Random, count: int) -> list[int]:
    """Orders per cycle (buys + 1 sell) adding up to ``count`` (at least 2)."""
    sizes, left = [], count
    while left > 0:
        size = min(rng.randint(2, 4), left)
        if left - size == 1:
            size += 1
        sizes.append(size)
        left -= size
    return sizes


def bot_history(n_orders: int, n_symbols: int = 20, days: int = 365, seed: int = 0,
                missing_buys: int = 0, split_every: int = 4) -> BotHistory:
    """``n_orders`` exchange orders (the ledger lacks ``missing_buys`` of them)."""
    if missing_buys > n_symbols:
        raise ValueError("at most one missing buy per symbol")
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    symbols = [f"S{i:02d}-USD" for i in range(n_symbols)]
    span_ms = days * 86_400_000
    start = END - timedelta(days=days)
    orders: list[dict[str, Any]] = []
    cycles: dict[str, list[list[int]]] = {}
    for k, symbol in enumerate(symbols):
        count = n_orders // n_symbols + (1 if k < n_orders % n_symbols else 0)
        offsets = np.sort(nprng.integers(0, span_ms - count, count)) + np.arange(count)
        base_cents = int(10 ** rng.uniform(2, 6.5))
        cycles[symbol] = []
        i = 0
        for size in _cycle_sizes(rng, count):
            cycle, held = [], 0
            for leg in range(size):
                side = "buy" if leg < size - 1 else "sell"
                units = rng.randint(10**4, 10**8) if side == "buy" else held
                held += units if side == "buy" else 0
                cents = max(1, int(base_cents * rng.uniform(0.9, 1.1)))
                cycle.append(len(orders))
                orders.append({
                    "order_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "symbol": symbol, "side": side,
                    "order_time": start + timedelta(milliseconds=int(offsets[i])),
                    "cents": cents, "units": units,
                    "fee": (cents * units * 6 + 50_000) // 100_000,  # 0.6%, in 1e-8 USD
                })
                i += 1
            cycles[symbol].append(cycle)
    missing = []
    for symbol in rng.sample(symbols, missing_buys):
        cycle = rng.choice(cycles[symbol])
        missing.append(orders[rng.choice(cycle[:-1])]["order_id"])
    fills = [fill for n, order in enumerate(orders)
             for fill in _fills(rng, order, split=n % split_every == 0)]
    gone = set(missing)
    ledger = pd.DataFrame([{
        "order_id": o["order_id"], "symbol": o["symbol"], "side": o["side"],
        "order_time": pd.Timestamp(o["order_time"]),
        "price": Decimal(o["cents"]).scaleb(-2), "size": Decimal(o["units"]).scaleb(-8),
        "total_fees_usd": Decimal(o["fee"]).scaleb(-8)} for o in orders
        if o["order_id"] not in gone])
    return BotHistory(fills, ledger, missing, symbols)


def _fills(rng: random.Random, order: dict[str, Any], split: bool) -> list[dict[str, Any]]:
    """The order's fills: one, or two halves at the same price with the fee split."""
    units, fee = order["units"], order["fee"]
    parts = [(units // 2, fee * (units // 2) // units)] if split and units >= 2 else []
    parts.append((units - sum(p[0] for p in parts), fee - sum(p[1] for p in parts)))
    out = []
    for k, (size, commission) in enumerate(parts):
        when = order["order_time"] + timedelta(milliseconds=k)
        out.append({
            "entry_id": f"{rng.getrandbits(256):064x}",
            "trade_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "order_id": order["order_id"], "trade_time": _rfc3339(when),
            "trade_type": "FILL", "price": decimal_str(Decimal(order["cents"]).scaleb(-2)),
            "size": decimal_str(Decimal(size).scaleb(-8)),
            "commission": decimal_str(Decimal(commission).scaleb(-8)),
            "product_id": order["symbol"],
            "sequence_timestamp": _rfc3339(when + timedelta(milliseconds=5)),
            "liquidity_indicator": "TAKER", "size_in_quote": False, "user_id": "bench-bot",
            "side": order["side"].upper(), "retail_portfolio_id": "bench-portfolio",
        })
    return out


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
