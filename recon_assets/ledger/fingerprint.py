"""The ledger fingerprint: one value that changes whenever any value FIFO reads changes.

The ledger sensor and ``only_if_changed`` compare it with the fingerprint a version was
computed from, so it must see an order corrected in place (size, price, fee, side, symbol or
time), not only orders added or removed. Each row is hashed from every column FIFO reads and
the row hashes are *summed*: a sum needs no sort and does not depend on row order, so the
database computes it in one scan and only three numbers cross the wire.

- PostgreSQL: the first 64 bits of the ``md5`` of the row's text, summed (``sum(bigint)`` is
  ``numeric``: exact, no overflow). Times enter as epoch seconds and floats in their shortest
  exact form, so the session's time zone or float settings cannot change the fingerprint.
- SQLite has no hash function: a Python aggregate registered on every connection hashes the
  values as SQLite returns them (REALs as Python floats, exact) and sums them in a Python int.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from recon_assets.trades import TRADE_COLUMNS

#: The name the SQLite aggregate is registered under (see :func:`register_sqlite_functions`).
_SQLITE_AGGREGATE = "recon_row_hash_sum"


@dataclass(frozen=True)
class LedgerFingerprint:
    """Row count and a hash over every value FIFO reads from ``trade_records``."""

    row_count: int
    values_hash: str

    def __str__(self) -> str:
        return f"{self.row_count}:{self.values_hash}"


def ledger_fingerprint(conn: Connection, columns: dict[str, str]) -> LedgerFingerprint:
    """The fingerprint of ``trade_records`` (a table or a view) whose columns are ``columns``
    (name -> type name); a FIFO column the ledger lacks counts as NULL in every row."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL extra_float_digits = 1"))  # shortest exact float text
        row = ", ".join(_pg_value(c, columns) for c in TRADE_COLUMNS)
        count, summary = conn.execute(text(
            "SELECT count(*), coalesce(sum(('x' || left(md5(ROW("
            f"{row})::text), 16))::bit(64)::bigint), 0) FROM trade_records")).one()
    else:
        values = ", ".join(c if c in columns else "NULL" for c in TRADE_COLUMNS)
        count, summary = conn.execute(text(
            f"SELECT count(*), {_SQLITE_AGGREGATE}({values}) FROM trade_records")).one()
    digest = hashlib.sha256(f"{count}:{summary}".encode()).hexdigest()[:24]
    return LedgerFingerprint(int(count), digest)


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
