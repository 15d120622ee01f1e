"""The FIFO a user would write: a deque of open buys per symbol, default-context ``Decimal``.

The baseline issue 17 names for ``allocate``: no exact fractions (the tests' ``Fraction``
reference is far slower than this), money computed in Python's default ``Decimal`` context
(28 digits, plenty for these amounts) and rounded half-even to 8 places once, at the end.
It reads every money value one by one, as such a loop does: ``Decimal`` objects as they are,
strings and Arrow decimals through ``Decimal``, floats through their shortest repr (as the
ledger reads them). Its rows and columns are ``allocate``'s, in the same order.
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd

from recon_assets.fifo import ALLOCATION_COLUMNS

_CENT = Decimal("1e-8")
_ZERO = Decimal(0)


def _reader(column: pd.Series) -> list[Decimal]:
    """The column's values as Decimals, one conversion per value (what a loop does)."""
    if column.dtype == float:
        return [Decimal(repr(v)) for v in column.tolist()]
    return [v if isinstance(v, Decimal) else Decimal(v) if v is not None else _ZERO
            for v in column.tolist()]


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def deque_allocate(trades: pd.DataFrame) -> pd.DataFrame:
    """FIFO allocations of a trades frame (any documented money form), as a DataFrame."""
    price, size, fee = (_reader(trades[c]) for c in ("price", "size", "total_fees_usd"))
    ids, symbols = trades["order_id"].tolist(), trades["symbol"].tolist()
    sides, times = trades["side"].tolist(), trades["order_time"].tolist()
    order = sorted(range(len(ids)),
                   key=lambda i: (symbols[i], times[i], sides[i] != "buy", ids[i]))
    rows: list[tuple[Any, ...]] = []
    lots: dict[str, deque] = {}
    for i in order:
        queue = lots.setdefault(symbols[i], deque())
        if sides[i] == "buy":
            queue.append([i, size[i]])
            continue
        remaining = size[i]
        sell_fpu = fee[i] / size[i]
        while remaining > 0 and queue:
            lot = queue[0]
            b = lot[0]
            qty = min(remaining, lot[1])
            buy_fpu = fee[b] / size[b]
            cost = qty * price[b] + qty * buy_fpu
            net = qty * price[i] - qty * sell_fpu
            rows.append((ids[i], ids[b], symbols[i], qty, price[b], price[i], _money(buy_fpu),
                         _money(sell_fpu), _money(cost), _money(qty * price[i]), _money(net),
                         _money(net - cost), times[b], times[i], None))
            lot[1] -= qty
            remaining -= qty
            if lot[1] == 0:
                queue.popleft()
        if remaining > _CENT:
            proceeds = remaining * price[i]
            rows.append((ids[i], None, symbols[i], remaining, None, price[i], None,
                         _money(sell_fpu), None, _money(proceeds),
                         _money(proceeds - remaining * sell_fpu), None, None, times[i],
                         f"UNMATCHED: {format(remaining.normalize(), 'f')} of "
                         f"{format(size[i], 'f')} not covered by earlier buys"))
    return pd.DataFrame(rows, columns=ALLOCATION_COLUMNS)
