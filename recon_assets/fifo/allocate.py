"""``allocate``: exact FIFO cost basis for a trades frame (SPEC section 3), vectorized.

The work is split by what it needs to be fast and exact: :mod:`.ordering` sorts the orders and
turns their Decimals into integers (:mod:`recon_assets.scaled`), :mod:`.matching` pairs sells
with buys per symbol on cumulative sizes, :mod:`.amounts` computes the money of every piece at
once, and :func:`recon_assets.scaled.decimal_series` turns the integers into decimal columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from recon_assets.fifo.amounts import amount, difference_rounded
from recon_assets.fifo.matching import match_fifo
from recon_assets.fifo.ordering import Book, book_orders
from recon_assets.money import EXACT
from recon_assets.scaled import decimal_of, decimal_series, spread
from recon_assets.trades import NormalizedTrades, normalize_trades_scaled

#: Columns of :func:`allocate`'s result: ``fifo_allocations`` minus the version bookkeeping.
ALLOCATION_COLUMNS = [
    "sell_order_id", "buy_order_id", "symbol", "allocated_size", "buy_price", "sell_price",
    "buy_fees_per_unit", "sell_fees_per_unit", "cost_basis_usd", "proceeds_usd",
    "net_proceeds_usd", "pnl_usd", "buy_time", "sell_time", "notes",
]
_MONEY_PLACES = 8
_BUY_SIDE = ("buy_fees_per_unit", "cost_basis_usd", "pnl_usd")  # missing on unmatched rows


def allocate(trades: pd.DataFrame | NormalizedTrades) -> pd.DataFrame:
    """Allocate every sell to the oldest earlier buys of its symbol (SPEC section 3), exactly.

    ``trades`` has the ``trade_records`` columns (money as Decimals, decimal strings or floats);
    unusable rows raise :class:`recon_assets.errors.BadRowError` naming order id and field.
    ``trades`` may also be what :func:`recon_assets.trades.normalize_trades_scaled` made of
    them (a ledger read with ``columnar``): it is not normalized again, and its money is
    quoted as it was read (a column of Arrow decimals alone would quote it at the column's
    scale).
    The result has one row per (sell, buy) match plus one ``UNMATCHED`` row per sell for what
    no earlier buy covers beyond 1e-8, ordered by symbol, sell processing order, buy order.

    Money, prices and sizes are ``pd.ArrowDtype(pa.decimal128(38, s))`` columns: exact, and
    built from integers without creating a Python object per value (a million ``Decimal``
    objects would cost more than the allocation). ``.tolist()`` gives ``Decimal`` values and
    ``pd.NA`` where a value is missing (the buy side of an unmatched row). Money has 8 places;
    prices and sizes keep every digit (the column's scale is the most places present). Ids,
    symbol and notes are objects (``None`` when missing), times UTC.
    """
    normalized = (trades if isinstance(trades, NormalizedTrades)
                  else normalize_trades_scaled(trades))
    frame = normalized.raise_if_bad("trades for FIFO")
    if frame.empty:
        return _empty()
    book = book_orders(frame, normalized.arrays)
    del normalized, frame  # the book holds what the result needs: free the rest first
    columns, money, matched = _from_book(book, _match(book))
    del book  # about 80 MiB a million orders, gone before the money columns are made
    return _frame(columns, money, matched)


@dataclass(frozen=True)
class _Rows:
    """The result rows as positions in the book; ``buy == -1`` marks an unmatched row."""

    sell: np.ndarray
    buy: np.ndarray
    size: np.ndarray  # in the symbol's size units: int64, or Python ints


def _match(book: Book) -> _Rows:
    sells, buys, sizes = [], [], []
    for lo, hi in book.symbol_bounds:
        matches = match_fifo(book.is_sell[lo:hi], book.size_units(lo, hi), book.dust(lo))
        sell = np.concatenate([matches.sell, matches.unmatched_sell]) + lo
        buy = np.concatenate([matches.buy + lo, np.full(len(matches.unmatched_sell), -1)])
        keep = np.argsort(sell, kind="stable")  # an unmatched row follows its sell's matches
        sells.append(sell[keep])
        buys.append(buy[keep])
        sizes.append(np.concatenate([matches.size, matches.unmatched_size])[keep])
    return _Rows(np.concatenate(sells), np.concatenate(buys).astype(np.int64),
                 np.concatenate(sizes))


def _from_book(book: Book, rows: _Rows
               ) -> tuple[dict[str, pd.Series], dict[str, np.ndarray], np.ndarray]:
    """Every result column the book is needed for, the money columns as integers in 1e-8
    units, and which rows have a buy side: so the book can go before the money columns,
    the biggest part of the result, are made from their integers."""
    n = len(rows.sell)
    matched = rows.buy >= 0
    places = book.size_places[rows.sell]
    money = _money(book, rows, places, matched)
    buy_at = np.where(matched, rows.buy, 0)
    buy_ids = book.values("order_id", buy_at)
    buy_ids[~matched] = None  # the few unmatched rows
    columns = {
        "sell_order_id": pd.Series(book.values("order_id", rows.sell), dtype=object, copy=False),
        "buy_order_id": pd.Series(buy_ids, dtype=object, copy=False),
        "symbol": pd.Series(book.values("symbol", rows.sell), dtype=object, copy=False),
        "allocated_size": decimal_series(rows.size, places, np.ones(n, dtype=bool)),
        "buy_price": book.decimals("price", rows.buy),
        "sell_price": book.decimals("price", rows.sell),
        "buy_time": book.times(rows.buy),
        "sell_time": book.times(rows.sell),
        "notes": pd.Series(_notes(book, rows), dtype=object, copy=False),
    }
    fee_per_unit = money.pop("fees_per_unit")
    money["buy_fees_per_unit"] = fee_per_unit[buy_at]
    money["sell_fees_per_unit"] = fee_per_unit[rows.sell]
    return columns, money, matched


def _frame(columns: dict[str, pd.Series], money: dict[str, np.ndarray], matched: np.ndarray
           ) -> pd.DataFrame:
    """The result: ``columns`` and the money columns, each made from its integers, which are
    then let go (the result never coexists with every integer column it was made from)."""
    every = np.ones(len(matched), dtype=bool)
    for name in list(money):
        valid = matched if name in _BUY_SIDE else every
        columns[name] = decimal_series(money.pop(name), _MONEY_PLACES, valid)
    # concat, unlike the DataFrame constructor, neither re-infers nor consolidates columns;
    # the Series wrap the arrays made here (copy=False: pandas would copy each otherwise).
    return pd.concat([columns[c].rename(c) for c in ALLOCATION_COLUMNS], axis=1)


def _money(book: Book, rows: _Rows, places: np.ndarray, matched: np.ndarray
           ) -> dict[str, np.ndarray]:
    """The rounded money of every result row (0 on the buy side of unmatched rows), and each
    order's fee per unit, as integers in 1e-8 units; each exact fraction is let go as soon
    as it is rounded."""
    n = len(rows.sell)
    sell_units = book.units[rows.sell]
    sell_price = book.part("price", rows.sell)
    proceeds = amount(rows.size, places, sell_price, None, sell_units, 1).rounded()
    net = amount(rows.size, places, sell_price, book.part("fee", rows.sell), sell_units, -1)
    del sell_price, sell_units
    at = np.flatnonzero(matched)
    buy = rows.buy[at]
    cost = amount(rows.size[at], places[at], book.part("price", buy), book.part("fee", buy),
                  book.units[buy], 1)
    del buy
    pnl = spread(difference_rounded(net.take(at), cost), at, n)
    return {"cost_basis_usd": spread(cost.rounded(), at, n), "proceeds_usd": proceeds,
            "net_proceeds_usd": net.rounded(), "pnl_usd": pnl,
            "fees_per_unit": book.fees_per_unit().rounded()}


def _notes(book: Book, rows: _Rows) -> np.ndarray:
    """``UNMATCHED: <remainder> of <sell size> not covered by earlier buys`` or None."""
    notes = np.full(len(rows.sell), None, dtype=object)
    unmatched = np.flatnonzero(rows.buy < 0)
    sizes = book.values("size", rows.sell[unmatched])
    for row, size in zip(unmatched, sizes):
        remainder = decimal_of(rows.size[row], book.size_places[rows.sell[row]])
        notes[row] = (f"UNMATCHED: {format(remainder.normalize(EXACT), 'f')} of "
                      f"{format(size, 'f')} not covered by earlier buys")
    return notes


def _empty() -> pd.DataFrame:
    """No rows, with the dtypes a non-empty result has."""
    dtypes: dict[str, object] = {c: object for c in ALLOCATION_COLUMNS}
    dtypes.update(dict.fromkeys(["allocated_size", "buy_price", "sell_price"],
                                pd.ArrowDtype(pa.decimal128(38, 0))))
    dtypes.update(dict.fromkeys(["buy_fees_per_unit", "sell_fees_per_unit", "cost_basis_usd",
                                 "proceeds_usd", "net_proceeds_usd", "pnl_usd"],
                                pd.ArrowDtype(pa.decimal128(38, _MONEY_PLACES))))
    dtypes.update(buy_time="datetime64[ns, UTC]", sell_time="datetime64[ns, UTC]")
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
