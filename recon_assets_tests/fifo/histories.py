"""Random trade histories for FIFO tests, and an exact comparison of two allocation frames.

The generator aims at FIFO's edges rather than at realism: several symbols, many orders on the
same timestamp, sells larger than what is held, sells before any buy, remainders within dust,
fees larger than the trade, sizes and prices with 0 to 18 places.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")


def random_history(rng: random.Random, n: int, *, symbols: int = 2, max_places: int = 8,
                   money: str = "decimal") -> pd.DataFrame:
    """``n`` orders as a raw trades frame, money as ``decimal``, ``str`` or ``float`` values."""
    rows = []
    for i in range(n):
        places = rng.randint(0, max_places)
        size = Decimal(rng.randint(1, 3 * 10 ** places)).scaleb(-places)
        if rng.random() < 0.1:  # a tiny size, to leave dust remainders
            size = Decimal(rng.randint(1, 30)).scaleb(-rng.randint(8, 10))
        price_places = rng.randint(0, 6)
        price = Decimal(rng.randint(1, 10 ** (price_places + 5))).scaleb(-price_places)
        fee = rng.choice([Decimal(0), Decimal(rng.randint(0, 10 ** 6)).scaleb(-rng.randint(0, 12)),
                          price * size * Decimal("0.006"), price * size * 3])
        rows.append({
            "order_id": f"o{rng.randint(0, 10 ** 6)}-{i}",
            "symbol": f"S{rng.randint(1, symbols)}-USD",
            "side": rng.choice(["buy", "buy", "sell", "BUY", "Sell"]),
            "order_time": START + pd.Timedelta(minutes=rng.randint(0, max(n // 3, 1))),
            **{name: _as(money, value) for name, value in
               (("price", price), ("size", size), ("total_fees_usd", fee))},
        })
    return pd.DataFrame(rows)


def _as(money: str, value: Decimal) -> Any:
    if money == "float":
        return float(value)
    return str(value) if money == "str" else value


def plain(value: Any) -> Any:
    """A cell as a comparable Python value: missing values of every kind become None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def assert_same_allocations(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal row by row and column by column (Decimals by value), with a readable failure."""
    assert list(actual.columns) == list(expected.columns)
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}"
    for column in expected.columns:
        got = [plain(v) for v in actual[column].tolist()]
        want = [plain(v) for v in expected[column].tolist()]
        for row, (g, w) in enumerate(zip(got, want)):
            assert g == w, (f"row {row} column {column}: {g!r} != {w!r}\n"
                            f"{actual.iloc[row].to_dict()}\n{expected.iloc[row].to_dict()}")
