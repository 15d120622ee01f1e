"""A deterministic bot history with gaps, for ``recon-assets demo`` and a fresh ``dagster dev``.

About 600 orders over the 90 days before 2026-11-01 on BTC-USD, ETH-USD and SOL-USD, made as
orders first and then split into 1-3 Coinbase fills that aggregate back to each order exactly
under SPEC section 4: equal fill prices, or pairs of equal size priced symmetrically around the
order price; commissions that sum to the order fee; some market buys sized in quote. The bot
only sells what it holds, so the exchange side never goes short. The ledger then loses a few
buys (which leaves later sells unmatched in FIFO, as in the real bot's incidents) and two sells.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

from recon_assets.money import DUST, EXACT, decimal_str

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAYS = 90
ORDER_COUNT = 600
SIZE_STEP = Decimal("0.00000001")
PRICE_STEP = Decimal("0.01")
FEE_STEP = Decimal("0.00000001")
#: Coinbase Advanced Trade's entry-tier commission rates.
FEE_RATES = {"MAKER": Decimal("0.004"), "TAKER": Decimal("0.006")}
#: Tier 1 looks 30 days before the first unmatched sell; missing buys stay well inside that.
MAX_GAP_TO_DEFICIT = timedelta(days=20)
MISSING_BUYS = 5
MISSING_SELLS = 2

#: symbol, starting price, daily volatility, share of the bot's orders
MARKETS = (("BTC-USD", 68000.0, 0.025, 0.40), ("ETH-USD", 2600.0, 0.035, 0.35),
           ("SOL-USD", 160.0, 0.045, 0.25))


@dataclass(frozen=True)
class DemoHistory:
    """The exchange's fills, the bot's true orders, and which of them the ledger lost."""

    fills: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    missing_buy_ids: list[str]
    missing_sell_ids: list[str]

    @property
    def ledger_orders(self) -> list[dict[str, Any]]:
        """The ``trade_records`` rows the bot's ledger has: every order but the gaps."""
        gaps = set(self.missing_buy_ids) | set(self.missing_sell_ids)
        return [order for order in self.orders if order["order_id"] not in gaps]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _orders(rng: random.Random) -> list[dict[str, Any]]:
    """The bot's orders in time order; sells never exceed what the bot holds."""
    start = END - timedelta(days=DAYS)
    offsets = sorted(rng.randrange(DAYS * 86_400_000) for _ in range(ORDER_COUNT))
    prices = {symbol: price for symbol, price, _, _ in MARKETS}
    last_seen = {symbol: start for symbol, _, _, _ in MARKETS}
    held = {symbol: Decimal(0) for symbol, _, _, _ in MARKETS}
    orders = []
    for offset in offsets:
        moment = start + timedelta(milliseconds=offset)
        symbol, _, volatility, _ = rng.choices(MARKETS, weights=[m[3] for m in MARKETS])[0]
        days = (moment - last_seen[symbol]).total_seconds() / 86_400
        prices[symbol] *= math.exp(volatility * math.sqrt(days) * rng.gauss(0, 1))
        last_seen[symbol] = moment
        price = Decimal(f"{prices[symbol]:.2f}")
        if held[symbol] == 0 or rng.random() < 0.55:
            side = "buy"
            size = (Decimal(rng.randint(2500, 150000)) / 100 / price).quantize(SIZE_STEP,
                                                                              ROUND_DOWN)
        else:
            side = "sell"
            share = Decimal(rng.randint(20, 80)) / 100
            size = (held[symbol] * share).quantize(SIZE_STEP, ROUND_DOWN)
            if rng.random() < 0.3 or size * price < 20:
                size = held[symbol]  # the bot closes its position
        held[symbol] += size if side == "buy" else -size
        liquidity = "MAKER" if rng.random() < 0.3 else "TAKER"
        fee = (size * price * FEE_RATES[liquidity]).quantize(FEE_STEP)
        orders.append({"order_id": _uuid(rng), "symbol": symbol, "side": side,
                       "order_time": moment, "price": price, "size": size,
                       "total_fees_usd": fee, "liquidity": liquidity})
    return orders


def _split(rng: random.Random, order: dict[str, Any]) -> list[tuple[Decimal, Decimal]]:
    """(base size, price) per fill: the sizes sum to the order size and the size-weighted
    average price is the order price, exactly."""
    units = int(order["size"] / SIZE_STEP)
    price = order["price"]
    count = min(rng.choices((1, 2, 3), weights=(55, 30, 15))[0], units)
    paired = 2 * (units // 2) if count == 2 else 2 * ((units - 1) // 2)
    if count >= 2 and paired >= 2 and rng.random() < 0.5:
        half = paired // 2 * SIZE_STEP
        spread = PRICE_STEP * rng.randint(1, 25)
        if spread < price:
            rest = [(units - paired) * SIZE_STEP] if units > paired else []
            return ([(half, price - spread), (half, price + spread)]
                    + [(size, price) for size in rest])
    cuts = sorted(rng.sample(range(1, units), count - 1))
    bounds = [0, *cuts, units]
    return [((b - a) * SIZE_STEP, price) for a, b in zip(bounds, bounds[1:])]


def _fills(rng: random.Random, order: dict[str, Any], liquidity: str, user_id: str,
           portfolio_id: str) -> list[dict[str, Any]]:
    parts = _split(rng, order)
    in_quote = order["side"] == "buy" and len({p for _, p in parts}) == 1 and rng.random() < 0.1
    value = order["size"] * order["price"]
    fee = order["total_fees_usd"]
    commissions = [(fee * size * price / value).quantize(FEE_STEP, ROUND_DOWN)
                   for size, price in parts[:-1]]
    commissions.append(fee - sum(commissions, Decimal(0)))
    fills, moment = [], order["order_time"]
    for (size, price), commission in zip(parts, commissions):
        trade_id = _uuid(rng)
        fills.append({
            "entry_id": f"{rng.getrandbits(256):064x}", "trade_id": trade_id,
            "order_id": order["order_id"], "trade_time": _rfc3339(moment),
            "trade_type": "FILL", "price": decimal_str(price),
            "size": decimal_str(size * price if in_quote else size),
            "commission": decimal_str(commission), "product_id": order["symbol"],
            "sequence_timestamp": _rfc3339(moment + timedelta(milliseconds=rng.randint(1, 9))),
            "liquidity_indicator": liquidity, "size_in_quote": in_quote,
            "user_id": user_id, "side": order["side"].upper(),
            "retail_portfolio_id": portfolio_id,
        })
        moment += timedelta(milliseconds=rng.randint(1, 400))
    return fills


def _unmatched_sells(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sells FIFO cannot fully cover, in SPEC section 3 order (clamped running inventory)."""
    held: dict[str, Decimal] = {}
    unmatched = []
    for order in sorted(orders, key=lambda o: (o["order_time"], o["side"] != "buy",
                                                 o["order_id"])):
        have = held.get(order["symbol"], Decimal(0))
        if order["side"] == "buy":
            held[order["symbol"]] = have + order["size"]
        else:
            if order["size"] - have > DUST:
                unmatched.append(order)
            held[order["symbol"]] = max(Decimal(0), have - order["size"])
    return unmatched


def _gaps_work(orders: list[dict[str, Any]], buys: list[dict[str, Any]],
               sells: list[dict[str, Any]]) -> bool:
    """Every missing buy leaves a sell unmatched soon after it, and tier 1's window (30 days
    before a symbol's first unmatched sell) reaches back to it."""
    gaps = {o["order_id"] for o in buys + sells}
    unmatched = _unmatched_sells([o for o in orders if o["order_id"] not in gaps])
    for buy in buys:
        same = [s["order_time"] for s in unmatched if s["symbol"] == buy["symbol"]]
        if not any(buy["order_time"] <= t <= buy["order_time"] + MAX_GAP_TO_DEFICIT
                   for t in same):
            return False
        if buy["order_time"] < min(same) - MAX_GAP_TO_DEFICIT:
            return False
    return True


def _by_time(order: dict[str, Any]) -> tuple[datetime, str]:
    return order["order_time"], order["order_id"]


def _choose_gaps(rng: random.Random, orders: list[dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pick the lost buys (at least one per symbol) and sells, retrying until they bite."""
    buys = [o for o in orders if o["side"] == "buy"]
    sells = [o for o in orders if o["side"] == "sell"]
    symbols = [m[0] for m in MARKETS]
    for _ in range(1000):
        picked = [rng.choice([b for b in buys if b["symbol"] == s]) for s in symbols]
        picked += rng.sample([b for b in buys if b not in picked], MISSING_BUYS - len(picked))
        lost_sells = rng.sample(sells, MISSING_SELLS)
        if _gaps_work(orders, picked, lost_sells):
            return sorted(picked, key=_by_time), sorted(lost_sells, key=_by_time)
    raise RuntimeError("no set of gaps breaks FIFO for this seed")


def demo_history(seed: int = 7) -> DemoHistory:
    """The demo history for ``seed``; the same seed always gives the same history."""
    rng = random.Random(seed)
    with localcontext(EXACT):
        orders = _orders(rng)
        user_id, portfolio_id = _uuid(rng), _uuid(rng)
        fills = [fill for order in orders
                 for fill in _fills(rng, order, order.pop("liquidity"), user_id, portfolio_id)]
    lost_buys, lost_sells = _choose_gaps(rng, orders)
    return DemoHistory(fills=fills, orders=orders,
                       missing_buy_ids=[o["order_id"] for o in lost_buys],
                       missing_sell_ids=[o["order_id"] for o in lost_sells])
