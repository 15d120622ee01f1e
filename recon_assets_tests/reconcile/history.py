"""A seeded bot history for tier tests: exchange fills, and a ledger with known damage.

Per symbol the bot buys one to three times, then sells everything, over about 20 days. Orders
are split into partial fills, some buys sized in quote currency (sizes chosen so base = quote /
price terminates, keeping the ledger exact). The ledger starts as the aggregated exchange
orders; :func:`damaged_ledger` removes buys and sells, alters one row and adds a phantom.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from recon_assets.exchange.models import FILL_COLUMNS

START = pd.Timestamp("2024-05-01", tz="UTC")
SYMBOLS = {"BTC-USD": 60000, "ETH-USD": 3000, "SOL-USD": 150}


def bot_fills(seed: int, cycles: int = 12) -> pd.DataFrame:
    """The exchange's fills for the whole history."""
    rng = random.Random(seed)
    fills: list[dict] = []
    for symbol, base_price in SYMBOLS.items():
        when = START
        for cycle in range(cycles):
            held = Decimal(0)
            for leg in range(rng.randint(1, 3)):
                size = Decimal(rng.randint(10**6, 10**8)).scaleb(-8)
                held += size
                when += pd.Timedelta(minutes=rng.randint(30, 600))
                _split(fills, rng, f"{symbol}-{cycle}-b{leg}", symbol, "BUY", size,
                       base_price, when, quote=rng.random() < 0.3)
            when += pd.Timedelta(minutes=rng.randint(30, 600))
            _split(fills, rng, f"{symbol}-{cycle}-s", symbol, "SELL", held, base_price, when,
                   quote=False)
    return pd.DataFrame(fills, columns=FILL_COLUMNS)


def _split(fills: list[dict], rng: random.Random, order_id: str, symbol: str, side: str,
           size: Decimal, base_price: int, when: pd.Timestamp, quote: bool) -> None:
    """One order as 1-3 partial fills at slightly different prices."""
    parts = rng.randint(1, 3)
    cuts = sorted(rng.sample(range(1, int(size.scaleb(8))), parts - 1))
    bounds = [0, *cuts, int(size.scaleb(8))]
    for k in range(parts):
        base = Decimal(bounds[k + 1] - bounds[k]).scaleb(-8)
        price = Decimal(base_price * 100 + rng.randint(-500, 500)).scaleb(-2)
        in_quote = quote and k == 0
        fills.append({
            "entry_id": f"e-{order_id}-{k}", "trade_id": f"t-{order_id}-{k}",
            "order_id": order_id, "trade_time": when + pd.Timedelta(seconds=k),
            "trade_type": "FILL", "price": price,
            "size": price * base if in_quote else base,
            "commission": (price * base * Decimal("0.006")).quantize(Decimal("1e-8")),
            "product_id": symbol, "sequence_timestamp": when + pd.Timedelta(seconds=k),
            "liquidity_indicator": "TAKER", "size_in_quote": in_quote, "user_id": "bot",
            "side": side})


@dataclass(frozen=True)
class Damage:
    ledger: pd.DataFrame
    removed: set[str]
    removed_buys: set[str]
    altered: str
    phantom: str


def damaged_ledger(orders: pd.DataFrame, seed: int) -> Damage:
    """Remove three buys and two sells, raise one order's price 1%, add one phantom buy."""
    rng = random.Random(seed)
    buys = sorted(orders.loc[orders["side"] == "buy", "order_id"])
    sells = sorted(orders.loc[orders["side"] == "sell", "order_id"])
    removed_buys = set(rng.sample(buys, 3))
    removed = removed_buys | set(rng.sample(sells, 2))
    ledger = orders[~orders["order_id"].isin(removed)].reset_index(drop=True)
    altered_row = rng.randrange(len(ledger))
    ledger.loc[altered_row, "price"] = ledger.loc[altered_row, "price"] * Decimal("1.01")
    phantom = ledger.iloc[[0]].assign(order_id="phantom-1", size=Decimal("0.00001"),
                                      order_time=START - pd.Timedelta(days=1))
    ledger = pd.concat([ledger, phantom], ignore_index=True)
    return Damage(ledger, removed, removed_buys, ledger.loc[altered_row, "order_id"],
                  "phantom-1")


def unmatched_sells(ledger: pd.DataFrame) -> pd.DataFrame:
    """Sells whose cumulative size exceeds the buys before them (per symbol), simply."""
    rows = []
    for symbol, orders in ledger.sort_values(["order_time", "order_id"]).groupby("symbol"):
        bought = sold = Decimal(0)
        for order in orders.itertuples():
            if order.side == "buy":
                bought += order.size
            else:
                sold += order.size
                if sold > bought + Decimal("1e-8"):
                    rows.append({"symbol": symbol, "sell_time": order.order_time,
                                 "sell_order_id": order.order_id})
    return pd.DataFrame(rows, columns=["symbol", "sell_time", "sell_order_id"])
