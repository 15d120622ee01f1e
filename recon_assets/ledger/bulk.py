"""Bulk writes: ``COPY ... FROM STDIN`` on PostgreSQL, rows as the database driver binds them.

Inserting a million rows one bound statement at a time spends most of its time in the driver
rendering and parsing placeholders. On PostgreSQL through psycopg 3 the rows go in with
``COPY`` on the connection's own DBAPI connection (so in the caller's transaction), as CSV
that pyarrow renders 100,000 rows at a time: decimals keep every digit and their scale, times
are UTC microseconds as the driver would send them, and NULL stays apart from an empty
string. Other drivers (SQLite, psycopg2) insert dicts made by :func:`clean_row`.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa
from pyarrow import compute as pc
from pyarrow import csv as pa_csv
from sqlalchemy import Column, Connection, Text

_CHUNK = 100_000


def can_copy(conn: Connection) -> bool:
    """Whether :func:`copy_frame` works on this connection (PostgreSQL through psycopg 3)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """DataFrame cells to database values: NaN/NaT/NA to None, Timestamps to datetimes."""
    out = {}
    for key, value in row.items():
        if value is None or value is pd.NaT or value is pd.NA:
            out[key] = None
        elif isinstance(value, pd.Timestamp):
            out[key] = value.to_pydatetime()
        elif isinstance(value, float) and value != value:
            out[key] = None
        else:
            out[key] = value
    return out


def copy_frame(conn: Connection, table: str, columns: Sequence[Column],
               frame: pd.DataFrame) -> None:
    """COPY the frame's ``columns`` (named as the table's columns) into ``table``.

    ``table`` is a name the connection resolves (a temporary table works); ``columns`` give
    each value's type, so a value is written as that type would bind it.
    """
    names = [c.name for c in columns]
    listed = ", ".join(f'"{n}"' for n in names)
    options = pa_csv.WriteOptions(include_header=False)
    with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(
            f'COPY "{table}" ({listed}) FROM STDIN (FORMAT csv)') as copy:
        for start in range(0, len(frame), _CHUNK):
            chunk = frame.iloc[start:start + _CHUNK]
            arrays = [_csv_column(conn, chunk[c.name], c) for c in columns]
            sink = io.BytesIO()
            pa_csv.write_csv(pa.table(arrays, names=names), sink, options)
            copy.write(sink.getbuffer())


def _csv_column(conn: Connection, values: pd.Series, column: Column) -> pa.Array:
    """A column for the CSV writer: vectorized for the common types, else value by value."""
    if isinstance(values.dtype, pd.ArrowDtype) and (
            pa.types.is_decimal(values.dtype.pyarrow_dtype)
            or pa.types.is_string(values.dtype.pyarrow_dtype)):
        return pa.array(values)
    if pd.api.types.is_datetime64_dtype(values.dtype):  # naive is UTC (UtcDateTime)
        values = values.dt.tz_localize("UTC")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        # Written naive plus "+00": Arrow formats zoned times ten times slower.
        naive = values.dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("us")
        text = pa.array(naive.astype("datetime64[us]")).cast(pa.string())
        return pc.binary_join_element_wise(text, "+00", "")
    if pd.api.types.is_bool_dtype(values.dtype):
        return pa.array(values, type=pa.bool_())
    if pd.api.types.is_integer_dtype(values.dtype):
        return pa.array(values, type=pa.int64())
    if isinstance(column.type, Text):
        try:
            return pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # not all strings: bind value by value below
    return pa.array([_as_text(conn, v, column) for v in values.tolist()], type=pa.string())


def _as_text(conn: Connection, value: Any, column: Column) -> str | None:
    """One value bound by the column's type, as executemany binds it, as text."""
    value = clean_row({"v": value})["v"]
    if value is not None and hasattr(column.type, "process_bind_param"):
        value = column.type.process_bind_param(value, conn.dialect)
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    return value.isoformat() if isinstance(value, datetime) else str(value)
