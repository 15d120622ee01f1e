"""Exchange fills -> one order each (SPEC section 4), and duplicate fills.

The old bot keyed fills by ``order_id`` in a dict, so each partial fill overwrote the previous
one and backfilled orders had the size of their last fill. Here every fill of an order counts,
exactly once per ``trade_id``, with exact arithmetic on scaled integers (see
:mod:`recon_assets.scaled`), vectorized over all fills at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recon_assets.errors import BadRowError
from recon_assets.exchange.models import FILL_COLUMNS, is_fill, is_spot, same_values
from recon_assets.scaled import (Scaled, div_half_even, group_starts, group_sums, scale_values,
                                 spread, to_decimals)
from recon_assets.trades import SIDES, TRADE_COLUMNS, empty_trades

#: Quotients (base size of a quote-sized fill, average price) that do not terminate are rounded
#: half-even to this many decimal places, or to the input's own precision where that is finer.
QUOTIENT_PLACES = 18

_AGGREGATE_INPUTS = ["trade_id", "order_id", "trade_time", "price", "size", "commission",
                     "product_id", "size_in_quote", "side"]
#: Fills with the same values here are the same execution reported twice under two trade ids.
CONTENT_KEY = ["order_id", "trade_time", "price", "size", "size_in_quote"]


def countable(fills: pd.DataFrame) -> np.ndarray:
    """Which rows of a fills frame make up a spot order.

    Left out: fills of perpetuals and futures (``BTC-PERP-INTX``, ``BIT-31JAN25-CDE``: not
    orders of the spot ledger); REVERSAL, CORRECTION and SYNTHETIC entries (Coinbase's docs
    do not say how they change an order, so none is folded in: each is a finding to review);
    and conflicting reports of an archived trade (the first report seen counts).
    """
    keep = is_spot(fills["product_id"]) & is_fill(fills)
    if "conflicting" in fills.columns:
        keep &= ~fills["conflicting"].to_numpy(dtype=bool)
    return keep


def aggregate_fills(fills: pd.DataFrame) -> pd.DataFrame:
    """One trades-frame row per ``order_id`` from a fills frame.

    - ``size``: the sum of base sizes; a fill with ``size_in_quote`` has its size in quote
      currency, so its base size is ``size / price``.
    - ``price``: the size-weighted average, ``sum(price * base) / sum(base)``, weighted by the
      same base sizes that make up ``size`` (one fill gives back its own price exactly).
    - ``total_fees_usd``: the sum of ``commission``; ``order_time``: the first fill's
      ``trade_time``; ``symbol``: ``product_id``; ``side`` lowercased.

    Only :func:`countable` fills count (spot FILLs, first reports). Sums and products are
    exact. The two divisions are exact when they terminate within :data:`QUOTIENT_PLACES`
    places and rounded half-even there otherwise. A fill repeated with
    the same ``trade_id`` counts once. Rows are ordered by ``order_time`` then ``order_id``.
    Raises :class:`BadRowError` naming every fill with a missing value, a price or size that is
    not positive, an unknown side, or a product or side that differs from its order's.
    """
    missing = [c for c in _AGGREGATE_INPUTS if c not in fills.columns]
    if missing:
        raise BadRowError("fills frame", [("*", c, "column missing") for c in missing])
    fills = fills[countable(fills)].drop_duplicates("trade_id", keep="first")
    if fills.empty:
        return empty_trades()
    codes, order_ids = pd.factorize(fills["order_id"].to_numpy(dtype=object))
    times = pd.to_datetime(fills["trade_time"], utc=True)
    order = np.lexsort((times.dt.tz_convert(None).to_numpy(), codes))
    fills, times, codes = fills.iloc[order], times.iloc[order], codes[order]
    starts = group_starts(codes)
    price, size, fee = _checked_values(fills, starts)
    quote = fills["size_in_quote"].to_numpy(dtype=bool)
    price_places, size_places = price.most_places, size.most_places
    prices = price.ints_at(price_places)
    base_scale = max(size_places, QUOTIENT_PLACES) if quote.any() else size_places
    base = size.ints_at(base_scale)
    if quote.any():  # base = quote / price, at base_scale places
        base[quote] = div_half_even(base[quote] * 10 ** price_places, prices[quote])
    notional = prices * base  # at price_places + base_scale places
    orders = len(starts)
    base_sum, notional_sum = group_sums(codes, base, orders), group_sums(codes, notional, orders)
    price_scale = max(price_places, QUOTIENT_PLACES)
    avg_price = div_half_even(notional_sum * 10 ** (price_scale - price_places), base_sum)

    firsts = fills.iloc[starts]
    trades = pd.DataFrame({
        "order_id": pd.Series(order_ids, dtype=object),
        "symbol": pd.Series(firsts["product_id"].to_numpy(dtype=object), dtype=object),
        "side": pd.Series(firsts["side"].str.lower().to_numpy(dtype=object), dtype=object),
        "order_time": times.iloc[starts].reset_index(drop=True),
        "price": to_decimals(avg_price, price_scale),
        "size": to_decimals(base_sum, base_scale),
        "total_fees_usd": to_decimals(group_sums(codes, fee.ints_at(fee.most_places), orders),
                                      fee.most_places),
    })
    return trades.sort_values(["order_time", "order_id"], kind="stable",
                              ignore_index=True)[TRADE_COLUMNS]


def _checked_values(fills: pd.DataFrame, starts: np.ndarray
                    ) -> tuple[Scaled, Scaled, Scaled]:
    """Price, size and commission as scaled integers, or every unusable fill named at once.

    ``fills`` is sorted by order, ``starts`` marks each order's first fill.
    """
    first = np.repeat(starts, np.diff(np.r_[starts, len(fills)]))
    side = fills["side"].astype(object).str.lower().to_numpy()
    product = fills["product_id"].to_numpy(dtype=object)
    missing = {c: fills[c].isna().to_numpy() for c in _AGGREGATE_INPUTS}
    present = ~(missing["price"] | missing["size"] | missing["commission"])
    price, size, fee = (scale_values(fills[c].to_numpy(dtype=object)[present])
                        for c in ("price", "size", "commission"))
    rules = [*((c, bad, "missing") for c, bad in missing.items()),
        ("price", spread(price.mantissa <= 0, present, len(present)), "must be positive"),
        ("size", spread(size.mantissa <= 0, present, len(present)), "must be positive"),
        ("side", ~np.isin(side, SIDES), "unknown side (want BUY or SELL)"),
        ("product_id", product != product[first], "differs from the order's first fill"),
        ("side", side != side[first], "differs from the order's first fill"),
    ]
    _raise_bad(fills, rules)
    return price, size, fee


def _raise_bad(fills: pd.DataFrame, rules: list[tuple[str, np.ndarray, str]]) -> None:
    trade_ids = fills["trade_id"].astype(str).to_numpy()
    problems = [(tid, column, message) for column, bad, message in rules
                for tid in trade_ids[np.asarray(bad, dtype=bool)]]
    if problems:
        raise BadRowError("fills", problems)


def find_duplicate_fills(fills: pd.DataFrame) -> pd.DataFrame:
    """Fills reported more than once: every copy, with what makes it a duplicate.

    Three kinds (``duplicate_kind``): ``"conflict"``, one ``trade_id`` reported with different
    values (:func:`~recon_assets.exchange.models.same_values`), every version listed;
    ``"trade_id"``, the same ``trade_id`` seen more than once with the same values;
    ``"content"``, distinct trade ids identical in order, time, price, size (and its unit,
    ``size_in_quote``), i.e. one execution booked twice. ``duplicate_of`` is the repeated
    ``trade_id``, or for content duplicates the group's smallest ``trade_id``. Only FILLs
    are compared (a reversal shares its fill's trade id by design). The result has the fill
    columns present in ``fills`` plus those two; it is empty when there are none.
    """
    columns = [c for c in FILL_COLUMNS if c in fills.columns]
    fills = fills[is_fill(fills)]
    repeated = fills[fills["trade_id"].duplicated(keep=False)]
    firsts = repeated.drop_duplicates("trade_id").set_index("trade_id")
    differs = ~same_values(repeated, firsts.loc[repeated["trade_id"]])
    conflicted = repeated["trade_id"].isin(repeated["trade_id"][differs]).to_numpy()
    repeated = repeated[columns].assign(
        duplicate_kind=np.where(conflicted, "conflict", "trade_id"),
        duplicate_of=lambda f: f["trade_id"])
    unique = fills[countable(fills)].drop_duplicates("trade_id", keep="first")
    same = unique[unique.duplicated(CONTENT_KEY, keep=False)][columns]
    same = same.assign(duplicate_kind="content", duplicate_of=same.groupby(
        CONTENT_KEY, dropna=False)["trade_id"].transform("min"))
    found = pd.concat([repeated, same], ignore_index=True)
    return found.sort_values(["duplicate_of", "duplicate_kind", "trade_id"], kind="stable",
                             ignore_index=True)
