"""How ``trade_records`` columns cross the wire, so every value reaches the checks as it is.

A driver must never decide what a value means before :func:`recon_assets.trades.
normalize_trades` can judge it per row:

- PostgreSQL money is read as text. A double-precision ``NaN`` then stays ``'NaN'`` (refused)
  instead of becoming a float NaN that pandas cannot tell from NULL (a NULL fee is 0), and
  NUMERIC ``NaN`` and infinities stay visible too; floats come as their shortest exact text.
- PostgreSQL times outside years 1-9999 (``timestamptz`` allows them, Python does not) would
  make the driver raise ``year 0 is out of range`` from inside the fetch: they are read as
  text beside the time and reported for their row. Other times are read as UTC wall clock, so
  the session's time zone never matters.
- SQLite values come as stored (a REAL ``1e400`` is ``inf``, an INTEGER time is a number); it
  cannot store a NaN, so NULL is the only missing value there.

``trade_records`` may be a table or a view (a read-only ledger), and must have every column
FIFO reads: a missing ``total_fees_usd`` would silently mean zero fees, so it is refused
unless the caller says to assume them (``--assume-zero-fees``).
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, inspect

from recon_assets.errors import ConfigError
from recon_assets.trades import TRADE_COLUMNS

#: The extra column holding a PostgreSQL time no Python datetime can hold, as text.
OUT_OF_RANGE_TIME = "order_time_out_of_range"
_MONEY = ("price", "size", "total_fees_usd")
_IN_RANGE = "{t} >= '0001-01-01' AND {t} < '10000-01-01'"


class MissingColumnError(ConfigError):
    """``trade_records`` lacks a column FIFO reads (exit 2: the user fixes the ledger, or
    explicitly assumes zero fees)."""


class ReadOnlyLedgerError(ConfigError):
    """``trade_records`` is a view: it can be read, never written."""


def check_columns(columns: dict[str, str], *, assume_zero_fees: bool = False) -> None:
    """Refuse a ``trade_records`` (table or view, with these columns) FIFO cannot read as
    SPEC section 2 says; without ``total_fees_usd`` only when zero fees are assumed."""
    missing = [c for c in TRADE_COLUMNS if c not in columns
               and not (c == "total_fees_usd" and assume_zero_fees)]
    if missing == ["total_fees_usd"]:
        raise MissingColumnError(
            "trade_records has no total_fees_usd column, so every fee would be 0: add the "
            "column, or pass --assume-zero-fees (fifo op config assume_zero_fees: true) to "
            "compute with zero fees on purpose")
    if missing:
        raise MissingColumnError(
            f"trade_records has no column {', '.join(missing)}: FIFO reads "
            f"{', '.join(TRADE_COLUMNS)} (SPEC section 2)")


def refuse_view(conn: Connection) -> None:
    """Raise :class:`ReadOnlyLedgerError` before a write when ``trade_records`` is a view
    (PostgreSQL would even accept inserts into a simple view, writing the bot's table)."""
    if "trade_records" in inspect(conn).get_view_names():
        raise ReadOnlyLedgerError(
            "trade_records is a view, a read-only ledger: recon-assets does not write into "
            "it; add the orders to the bot's own table (the requests stay approved)")


def read_expressions(dialect: str, columns: dict[str, str], names: list[str]
                     ) -> dict[str, str]:
    """Result column name -> SELECT expression reading ``names`` (columns of
    ``trade_records``, whose types are ``columns``) as described above."""
    if dialect != "postgresql":
        return {name: name for name in names}
    exprs = {}
    for name in names:
        kind = columns[name].upper()
        if name in _MONEY and not _is_text(kind):
            exprs[name] = f"CAST({name} AS text) AS {name}"
        elif name == "order_time" and "TIMESTAMP" in kind:
            utc = "order_time AT TIME ZONE 'UTC'" if "TIME ZONE" in kind else "order_time"
            in_range = _IN_RANGE.format(t=f"({utc})")
            exprs[name] = f"CASE WHEN {in_range} THEN {utc} END AS order_time"
            exprs[OUT_OF_RANGE_TIME] = (f"CASE WHEN NOT ({in_range}) THEN "
                                        f"CAST(order_time AS text) END AS {OUT_OF_RANGE_TIME}")
        else:
            exprs[name] = name
    return exprs


def mark_out_of_range_times(raw: pd.DataFrame) -> pd.DataFrame:
    """Put each out-of-range time's text (which no parser accepts) in place of its missing
    ``order_time``, so the row is refused as "not a time" rather than as "missing"."""
    if OUT_OF_RANGE_TIME not in raw.columns:
        return raw
    outside = raw.pop(OUT_OF_RANGE_TIME)
    if outside.notna().any():
        times = raw["order_time"].astype(object)
        raw["order_time"] = times.where(outside.isna(), outside + " (outside years 1-9999)")
    return raw


def _is_text(kind: str) -> bool:
    return any(word in kind for word in ("CHAR", "TEXT", "STRING"))
