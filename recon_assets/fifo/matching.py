"""FIFO matching of one symbol's orders as arithmetic on cumulative sizes, with no loop over lots.

Orders arrive in processing order with exact integer sizes (int64, or Python ints in an object
array when int64 could overflow). Holding inventory ``I`` evolves as ``I += buy`` and
``I = max(0, I - sell)``; its closed form is ``I_k = X_k - min(0, min_{m<=k} X_m)`` where ``X`` is
the running sum of buys minus sells, so a running minimum gives each sell's shortfall (what no
earlier buy covers). The shortfall is not consumed, which is what keeps a later buy from serving
an earlier sell: the consumed parts of sells, laid end to end, never get ahead of the buys made
before them. FIFO then maps that consumed stream onto the buy stream in order, so the matches
are the overlaps of two sets of consecutive intervals, found with ``np.searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Matches:
    """Matched pieces (buy row, sell row, size) and unmatched sell remainders, as row numbers.

    Pieces come in consumption order: by sell, then by buy. Rows index the input arrays.
    """

    buy: np.ndarray
    sell: np.ndarray
    size: np.ndarray
    unmatched_sell: np.ndarray
    unmatched_size: np.ndarray


def match_fifo(is_sell: np.ndarray, size: np.ndarray, dust: int) -> Matches:
    """FIFO-match orders given in processing order; remainders above ``dust`` are unmatched.

    ``size`` holds positive integers in one common unit (``dust`` is in the same unit).
    """
    sells = np.flatnonzero(is_sell)
    buys = np.flatnonzero(~is_sell)
    zero = size[:0].sum()  # 0 of the right type (int64 or Python int)
    running = np.cumsum(np.where(is_sell, -size, size))
    shortfall = -np.minimum.accumulate(np.minimum(running, zero))
    previous = np.concatenate([[zero], shortfall[:-1]]).astype(size.dtype)
    unmatched = (shortfall - previous)[sells]
    consumed_end = np.cumsum(size[sells] - unmatched)
    bought_end = np.cumsum(size[buys])
    leftover = unmatched > dust
    if not len(sells) or not len(buys) or consumed_end[-1] == zero:
        empty = np.zeros(0, dtype=np.int64)
        return Matches(empty, empty, size[:0], sells[leftover], unmatched[leftover])
    # Piece boundaries: every end of a buy or of a sell's consumed part, up to the last one.
    # Merging the two sorted runs (a stable argsort of their concatenation) also tells, at
    # each boundary's first occurrence, how many buy ends and consumed ends are smaller:
    # the buy and the sell the piece belongs to, with no search.
    positive = consumed_end[consumed_end > zero]
    merged = np.concatenate([bought_end, positive])
    step = np.argsort(merged, kind="stable")
    ends = merged[step]
    from_buys = step < len(bought_end)
    buys_before = np.cumsum(from_buys) - from_buys
    first = np.concatenate([[True], ends[1:] != ends[:-1]]) & (ends <= consumed_end[-1])
    at = np.flatnonzero(first)
    ends = ends[at]
    starts = np.concatenate([[zero], ends[:-1]]).astype(size.dtype)
    return Matches(
        buy=buys[buys_before[at]],
        sell=sells[len(consumed_end) - len(positive) + at - buys_before[at]],
        size=ends - starts,
        unmatched_sell=sells[leftover],
        unmatched_size=unmatched[leftover],
    )
