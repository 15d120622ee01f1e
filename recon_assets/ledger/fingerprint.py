"""The ledger fingerprint: one value that changes whenever any value FIFO reads changes.

The ledger sensor and ``only_if_changed`` compare it with the fingerprint a version was
computed from, so it must see an order corrected in place (size, price, fee, side, symbol or
time), not only orders added or removed. Each row is hashed from every column FIFO reads and
the row hashes are *summed*: a sum needs no sort and does not depend on row order, so the
database computes it in one scan and only a few numbers cross the wire. The scan groups by
``symbol``, so the same numbers give each symbol's own fingerprint (what lets a FIFO version
recompute only the symbols that changed); the ledger's is made from their sums, exactly the
string an ungrouped scan gives.

- PostgreSQL: the first 64 bits of the ``md5`` of the row's text, summed (``sum(bigint)`` is
  ``numeric``: exact, no overflow). Times enter as epoch seconds and floats in their shortest
  exact form, so the session's time zone or float settings cannot change the fingerprint.
- SQLite has no hash function: a Python aggregate registered on every connection hashes the
  values as SQLite returns them (REALs as Python floats, exact) and sums them in a Python int.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from sqlalchemy import Connection, text

from recon_assets.trades import TRADE_COLUMNS

#: The name the SQLite aggregate is registered under (see :func:`register_sqlite_functions`).
_SQLITE_AGGREGATE = "recon_row_hash_sum"


@dataclass(frozen=True)
class LedgerFingerprint:
    """Row count and a hash over every value FIFO reads from ``trade_records``."""

    row_count: int
    values_hash: str
    #: Trimmed symbol -> the fingerprint of that symbol's rows (as ``str`` of this class
    #: gives it); rows without a symbol are in no entry.
    by_symbol: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return f"{self.row_count}:{self.values_hash}"


def ledger_fingerprint(conn: Connection, columns: dict[str, str]) -> LedgerFingerprint:
    """The fingerprint of ``trade_records`` (a table or a view) whose columns are ``columns``
    (name -> type name), with each symbol's; a FIFO column the ledger lacks counts as NULL in
    every row."""
    group = "symbol" if "symbol" in columns else "NULL"
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL extra_float_digits = 1"))  # shortest exact float text
        groups = conn.execute(text(
            f"SELECT {group}, count(*), coalesce(sum({pg_row_hash(columns)}), 0) "
            "FROM trade_records GROUP BY 1")).all()
        sums = [(symbol, count, int(summary)) for symbol, count, summary in groups]
        shown = str
    else:
        values = ", ".join(c if c in columns else "NULL" for c in TRADE_COLUMNS)
        groups = conn.execute(text(
            f"SELECT {group}, count(*), {_SQLITE_AGGREGATE}({values}) FROM trade_records "
            "GROUP BY 1")).all()
        sums = [(symbol, count, int(summary, 16)) for symbol, count, summary in groups]
        shown = "{:x}".format
    by_symbol: dict[str, tuple[int, int]] = {}
    for symbol, count, summary in sums:
        name = str(symbol).strip() if symbol is not None else ""
        if name:
            before = by_symbol.get(name, (0, 0))
            by_symbol[name] = (before[0] + count, before[1] + summary)
    total = sum(count for _s, count, _v in sums), sum(summary for _s, _c, summary in sums)
    return _fingerprint(*total, shown, {name: str(_fingerprint(count, summary, shown))
                                        for name, (count, summary) in sorted(by_symbol.items())})


def pg_row_hash(columns: dict[str, str]) -> str:
    """The SQL of one ``trade_records`` row's 64-bit hash as the PostgreSQL fingerprint sums
    it (the session must have ``extra_float_digits = 1``); a read can select it beside the
    row to know the fingerprint of exactly the rows it read (:func:`rows_fingerprint`)."""
    row = ", ".join(_pg_value(c, columns) for c in TRADE_COLUMNS)
    return f"('x' || left(md5(ROW({row})::text), 16))::bit(64)::bigint"


def rows_fingerprint(hashes: np.ndarray) -> str:
    """The fingerprint, as :attr:`LedgerFingerprint.by_symbol` words a symbol's, of the rows
    whose :func:`pg_row_hash` values these are (int64; all of one symbol's rows: the same
    string).

    Summed exactly without a Python int per row: each hash's high (signed) and low 32 bits
    are summed apart in int64, which cannot wrap below 2**31 rows, and joined as Python ints.
    """
    if len(hashes) >= 2**31:
        raise OverflowError(f"{len(hashes)} row hashes are too many to sum in int64 halves")
    high = int(np.right_shift(hashes, 32).sum(dtype=np.int64))
    low = int(np.bitwise_and(hashes, 0xFFFFFFFF).sum(dtype=np.int64))
    return str(_fingerprint(len(hashes), (high << 32) + low, str))


def _fingerprint(count: int, summary: int, shown: Callable[[int], str],
                 by_symbol: Mapping[str, str] | None = None) -> LedgerFingerprint:
    """Row count and hash sum as one fingerprint; the sum is ``shown`` as the ungrouped scan
    always showed it (decimal on PostgreSQL, hex on SQLite), so the strings stay the same."""
    digest = hashlib.sha256(f"{count}:{shown(summary)}".encode()).hexdigest()[:24]
    return LedgerFingerprint(int(count), digest, by_symbol or {})


def _pg_value(column: str, columns: dict[str, str]) -> str:
    if column not in columns:
        return "NULL"
    if column == "order_time" and "TIMESTAMP" in columns[column].upper():
        return "extract(epoch FROM order_time)"  # the instant, whatever the session's zone
    return column


class _RowHashSum:
    """SQLite aggregate: the sum of a 128-bit hash of each row's values (a Python int, so it
    never overflows), as hex text."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, *values: Any) -> None:
        # pickle keeps types apart (1 vs 1.0 vs '1') and floats exact (their 8 bytes), and is
        # three times faster than repr on floats; protocol 4 fixes the bytes across versions
        row = pickle.dumps(values, 4)
        self.total += int.from_bytes(hashlib.md5(row, usedforsecurity=False).digest(), "big")

    def finalize(self) -> str:
        return format(self.total, "x")


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Register the fingerprint aggregate on a new SQLite DB-API connection."""
    dbapi_conn.create_aggregate(_SQLITE_AGGREGATE, len(TRADE_COLUMNS), _RowHashSum)
