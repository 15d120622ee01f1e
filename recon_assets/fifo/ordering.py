"""The order book FIFO works on: orders in processing order, with exact integer forms.

SPEC section 3 processes each symbol's orders by (order_time, buys before sells, order_id).
Sorting a million string ids is slow, so rows are sorted on integer keys and only the rows
that tie on all of them are ordered by id. Sizes of one symbol share one number of places, so
they can be added and compared as integers; a symbol whose sizes could overflow int64 keeps
them as Python ints instead (slower, still exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recon_assets.fifo.amounts import Exact, fee_per_unit
from recon_assets.scaled import Scaled, as_int64, decimal_series, group_starts, to_places
from recon_assets.trades import TradeArrays, trade_arrays, written

_DUST_PLACES = 8  # DUST = 1e-8


@dataclass(frozen=True)
class Book:
    """Orders in processing order: every array has one entry per order, in that order.

    Sizes as written stay in the frame's order: :meth:`values` fetches them through
    ``position`` only for the rows that need them.
    """

    sizes_given: pd.Series  # the size column as given, in the frame's order
    position: np.ndarray  # the frame row of each order
    is_sell: np.ndarray
    order_time: pd.api.extensions.ExtensionArray
    scaled: dict[str, Scaled]  # "price", "fee"
    symbol_bounds: list[tuple[int, int]]
    size_places: np.ndarray  # the places of the symbol's sizes
    units: np.ndarray  # size at size_places: int64, or Python ints
    order_ids: np.ndarray  # objects, in processing order
    symbol_codes: np.ndarray  # into symbol_names, in processing order
    symbol_names: np.ndarray  # objects, sorted

    def values(self, column: str, index: np.ndarray) -> np.ndarray:
        """Ids, symbols or sizes as written (Decimals) at the orders ``index``, as objects.

        Ids and symbols come from copies in processing order: result rows follow that order,
        so these gathers read memory nearly in sequence. Sizes are for the few rows a note
        quotes (:func:`recon_assets.trades.written`).
        """
        if column == "order_id":
            return self.order_ids[index]
        if column == "symbol":
            return self.symbol_names[self.symbol_codes[index]]
        return np.array(written(self.sizes_given, self.position[index]), dtype=object)

    def size_units(self, lo: int, hi: int) -> np.ndarray:
        """One symbol's sizes as integers: int64 when no running sum can overflow, else ints."""
        small, fits = as_int64(self.units[lo:hi])
        if fits.all() and small.astype(float).sum() < 2.0 ** 62:
            return small
        return self.units[lo:hi].astype(object)

    def dust(self, lo: int) -> int:
        """1e-8 in the symbol's size units, rounded down (a remainder must exceed it)."""
        places = int(self.size_places[lo])
        return 10 ** (places - _DUST_PLACES) if places >= _DUST_PLACES else 0

    def part(self, name: str, index: np.ndarray) -> Scaled:
        return self.scaled[name].take(index)

    def decimals(self, name: str, index: np.ndarray) -> pd.Series:
        """Exact copies of a price or fee column at ``index`` (-1 gives a missing value)."""
        scaled, present = self.scaled[name], index >= 0
        at = np.where(present, index, 0)
        return decimal_series(scaled.mantissa[at], scaled.places[at], present)

    def times(self, index: np.ndarray) -> pd.Series:
        return pd.Series(self.order_time.take(index, allow_fill=True))

    def fees_per_unit(self) -> Exact:
        """Each order's fee / size in 1e-8 units."""
        return fee_per_unit(self.scaled["fee"], self.units, self.size_places)


def book_orders(frame: pd.DataFrame, arrays: TradeArrays | None = None) -> Book:
    """Sort a normalized trades frame into processing order and derive its integer forms.

    ``arrays`` are the frame's columns as integers when normalization kept them
    (:attr:`recon_assets.trades.NormalizedTrades.arrays`), else they are made here. Decimals
    are converted in the frame's own order (walking a million Python objects in memory order
    is twice as fast) and only the resulting integers are permuted.
    """
    arrays = arrays or trade_arrays(frame)
    codes, is_sell = arrays.symbol_codes, arrays.is_sell
    order_ids = frame["order_id"].to_numpy(dtype=object)
    order = _processing_order(codes, pd.DatetimeIndex(frame["order_time"]).asi8, is_sell,
                              order_ids)
    scaled = {name: arrays.money[column].take(order)
              for name, column in (("price", "price"), ("fee", "total_fees_usd"),
                                   ("size", "size"))}
    codes = codes[order]
    starts = group_starts(codes)
    ends = np.append(starts[1:], len(codes))
    size = scaled.pop("size")
    places = np.repeat(np.maximum.reduceat(size.places, starts), ends - starts)
    return Book(arrays.given["size"], order, is_sell[order],
                frame["order_time"].array.take(order), scaled,
                list(zip(starts.tolist(), ends.tolist())), places, to_places(size, places),
                order_ids[order], codes, arrays.symbol_names)


def _processing_order(codes: np.ndarray, times: np.ndarray, is_sell: np.ndarray,
                      order_id: np.ndarray) -> np.ndarray:
    """Row order by (symbol, time, buys first, order id); ids are compared only among ties.

    Rows are sorted by time and side (an unstable sort: ties are settled below), then stably
    by symbol; only rows equal on all three are ordered by id.
    """
    if len(times) and -2 ** 61 < times.min() and times.max() < 2 ** 61:
        key = times * 2 + is_sell
        order = np.argsort(key)
        small = codes.astype(np.int16) if codes.max() < 2 ** 15 else codes
        by_symbol = small[order]
        regroup = np.argsort(by_symbol, kind="stable")
        order = order[regroup]
        keys = (by_symbol[regroup], key[order])
    else:
        order = np.lexsort((is_sell, times, codes))
        keys = (codes[order], times[order], is_sell[order])
    same = np.logical_and.reduce([k[1:] == k[:-1] for k in keys])
    if not same.any():
        return order
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    group = np.cumsum(np.concatenate([[True], ~same]))
    at = np.flatnonzero(tied)
    rank = np.empty(len(at), dtype=np.int64)
    rank[np.argsort(order_id[order[at]], kind="stable")] = np.arange(len(at))
    order[at] = order[at][np.lexsort((rank, group[at]))]
    return order

