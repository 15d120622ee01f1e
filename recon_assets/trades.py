"""The order frame every domain shares: ``trade_records`` columns, normalized and exact.

A *trades frame* has the columns of :data:`TRADE_COLUMNS`, one row per order:
``order_id`` and ``symbol`` strings, ``side`` ``"buy"``/``"sell"``, ``order_time`` a UTC
``pandas.Timestamp``, and ``price``, ``size``, ``total_fees_usd`` as ``Decimal`` objects
(fee NULL read as 0). Ledger rows, exchange orders and API callers all go through
:func:`normalize_trades`, so bad input is reported the same way everywhere: by order id and
field, never as a stack trace from deep inside a computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from recon_assets.errors import BadRowError
from recon_assets.money import NotADecimal, to_decimal

TRADE_COLUMNS = ["order_id", "symbol", "side", "order_time", "price", "size", "total_fees_usd"]
MONEY_COLUMNS = ["price", "size", "total_fees_usd"]
SIDES = ("buy", "sell")


@dataclass
class NormalizedTrades:
    """The usable rows, and a ``(order_id, field, message)`` entry for each unusable one."""

    trades: pd.DataFrame
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def bad_order_ids(self) -> list[str]:
        return sorted({p[0] for p in self.problems})

    def raise_if_bad(self, what: str = "ledger rows") -> pd.DataFrame:
        """Return the trades, or raise :class:`BadRowError` listing every problem."""
        if self.problems:
            raise BadRowError(what, self.problems)
        return self.trades


def empty_trades() -> pd.DataFrame:
    """A trades frame with no rows and the right dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in TRADE_COLUMNS})
    frame["order_time"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def _to_utc(value: Any) -> pd.Timestamp:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        raise ValueError("missing")
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("missing")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def normalize_trades(raw: pd.DataFrame) -> NormalizedTrades:
    """Validate and normalize rows with the ``trade_records`` columns into a trades frame.

    Sides are read case-insensitively, naive times are UTC, money goes through
    :func:`recon_assets.money.to_decimal` (floats by their shortest representation). A row
    with a missing or malformed field, a non-positive size or price, an unknown side, or an
    order id seen twice is left out and reported.
    """
    missing_cols = [c for c in TRADE_COLUMNS if c not in raw.columns and c != "total_fees_usd"]
    if missing_cols:
        raise BadRowError("trade frame", [("*", c, "column missing") for c in missing_cols])
    n = len(raw)
    if n == 0:
        return NormalizedTrades(empty_trades())
    fees_in = raw["total_fees_usd"].tolist() if "total_fees_usd" in raw.columns else [None] * n
    problems: list[tuple[str, str, str]] = []
    ids = ["" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
           for v in raw["order_id"].tolist()]
    out: dict[str, list[Any]] = {c: [] for c in TRADE_COLUMNS}
    seen: dict[str, int] = {}
    id_series = pd.Series(ids, dtype=object)
    dup_ids = set(id_series[id_series.duplicated(keep=False)]) - {""}
    cols = {c: raw[c].tolist() for c in ("symbol", "side", "order_time", "price", "size")}
    for i in range(n):
        oid = ids[i]
        label = oid or f"row {i}"
        row_problems: list[tuple[str, str, str]] = []
        if not oid:
            row_problems.append((label, "order_id", "missing"))
        elif oid in dup_ids:
            seen[oid] = seen.get(oid, 0) + 1
            if seen[oid] == 1:
                problems.append((oid, "order_id", "duplicate order id"))
            continue
        symbol = cols["symbol"][i]
        if not isinstance(symbol, str) or not symbol.strip():
            row_problems.append((label, "symbol", f"missing or not text: {symbol!r}"))
        side = cols["side"][i]
        side_norm = side.strip().lower() if isinstance(side, str) else None
        if side_norm not in SIDES:
            row_problems.append((label, "side", f"unknown side {side!r} (want buy or sell)"))
        try:
            when = _to_utc(cols["order_time"][i])
        except (ValueError, TypeError) as exc:
            row_problems.append((label, "order_time", f"not a time: {cols['order_time'][i]!r}"
                                 if str(exc) != "missing" else "missing"))
            when = None
        money: dict[str, Decimal | None] = {}
        for name, value in (("price", cols["price"][i]), ("size", cols["size"][i]),
                            ("total_fees_usd", fees_in[i])):
            try:
                money[name] = to_decimal(value)
            except NotADecimal as exc:
                row_problems.append((label, name, str(exc)))
                money[name] = None
                continue
            if name == "total_fees_usd":
                money[name] = money[name] if money[name] is not None else Decimal(0)
            elif money[name] is None:
                row_problems.append((label, name, "missing"))
            elif money[name] <= 0:
                row_problems.append((label, name, f"must be positive, got {money[name]}"))
        if row_problems:
            problems.extend(row_problems)
            continue
        out["order_id"].append(oid)
        out["symbol"].append(symbol.strip())
        out["side"].append(side_norm)
        out["order_time"].append(when)
        out["price"].append(money["price"])
        out["size"].append(money["size"])
        out["total_fees_usd"].append(money["total_fees_usd"])
    if not out["order_id"]:
        return NormalizedTrades(empty_trades(), problems)
    frame = pd.DataFrame({c: pd.Series(out[c], dtype=object) for c in TRADE_COLUMNS})
    frame["order_time"] = pd.to_datetime(pd.Series(out["order_time"]), utc=True)
    return NormalizedTrades(frame, problems)
