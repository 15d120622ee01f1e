"""Open lots as of a time: what a FIFO version says is still held, and at what cost.

The holdings are not stored anywhere: they follow from the ledger's buys and the sizes a
version allocated to sells up to that time. Seeing them per lot answers "why does this sell
have that cost basis" and "what does the exchange balance have to match". Pure, no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pandas as pd

from recon_assets.money import EXACT, MONEY_PLACES, to_decimal
from recon_assets.trades import normalize_trades

INVENTORY_COLUMNS = ["symbol", "buy_order_id", "buy_time", "size", "allocated_size",
                     "remaining_size", "price", "total_fees_usd", "remaining_cost_basis_usd"]
_ZERO = Decimal(0)
_SCALE = 10 ** -MONEY_PLACES.as_tuple().exponent


def _utc(at: pd.Timestamp | str | None) -> pd.Timestamp | None:
    if at is None:
        return None
    at = pd.Timestamp(at)
    return at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")


def lot_cost(price: Decimal, size: Decimal, fee: Decimal, remaining: Decimal) -> Decimal:
    """``(price + fee/size) * remaining`` exactly, rounded half-even to 8 places only at the
    end (SPEC section 3): as a fraction, so a non-terminating ``fee/size`` loses nothing."""
    exact = (Fraction(price) * Fraction(size) + Fraction(fee)) * Fraction(remaining) \
        / Fraction(size)
    return Decimal(round(exact * _SCALE)).scaleb(MONEY_PLACES.as_tuple().exponent, EXACT)


def inventory(trades: pd.DataFrame, allocations: pd.DataFrame,
              at: pd.Timestamp | None = None) -> pd.DataFrame:
    """Every buy still (partly) held at ``at`` (default: after the last order), FIFO order.

    A buy counts from its ``order_time`` and loses the sizes the version allocated to sells
    at or before ``at``. ``remaining_size`` is exact; ``remaining_cost_basis_usd`` is that
    share of the buy's cost including its fee. ``trades`` are ``trade_records`` rows (raw or
    normalized); ``allocations`` are a version's rows. A negative remaining size means the
    version over-allocates the buy (the ``no_buy_over_allocated`` check fails on it): it is
    kept so it shows, not hidden.
    """
    frame = normalize_trades(trades).raise_if_bad("trades for the inventory")
    when = _utc(at)
    buys = frame[frame["side"] == "buy"]
    if when is not None:
        buys = buys[buys["order_time"] <= when]
    used = _allocated(allocations, when)
    rows = []
    for order_id, symbol, time, price, size, fee in zip(
            buys["order_id"], buys["symbol"], buys["order_time"], buys["price"], buys["size"],
            buys["total_fees_usd"]):
        taken = used.get(order_id, _ZERO)
        remaining = EXACT.subtract(size, taken)
        if remaining == 0:
            continue
        rows.append((symbol, order_id, time, size, taken, remaining, price, fee,
                     lot_cost(price, size, fee, remaining)))
    lots = pd.DataFrame(rows, columns=INVENTORY_COLUMNS)
    lots["buy_time"] = pd.to_datetime(lots["buy_time"], utc=True)
    return lots.sort_values(["symbol", "buy_time", "buy_order_id"], ignore_index=True)


def _allocated(allocations: pd.DataFrame, when: pd.Timestamp | None) -> dict[str, Decimal]:
    """Size allocated per buy by sells at or before ``when``, summed exactly."""
    matched = allocations[allocations["buy_order_id"].notna()]
    if when is not None and not matched.empty:
        matched = matched[pd.to_datetime(matched["sell_time"], utc=True) <= when]
    used: dict[str, Decimal] = {}
    for buy, size in zip(matched["buy_order_id"], matched["allocated_size"].tolist()):
        used[buy] = EXACT.add(used.get(buy, _ZERO), to_decimal(size))
    return used


def inventory_totals(lots: pd.DataFrame) -> pd.DataFrame:
    """Per symbol: open lots, remaining size and cost basis (the sum of the lots' rounded
    costs, so it matches what a reader adds up from the lot list)."""
    rows = []
    for symbol, group in lots.groupby("symbol", sort=True):
        size, cost = _ZERO, _ZERO
        for s, c in zip(group["remaining_size"], group["remaining_cost_basis_usd"]):
            size, cost = EXACT.add(size, s), EXACT.add(cost, c)
        rows.append((symbol, len(group), size, cost))
    return pd.DataFrame(rows, columns=["symbol", "lots", "remaining_size",
                                       "remaining_cost_basis_usd"])
