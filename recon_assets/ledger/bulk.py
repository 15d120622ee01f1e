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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import pyarrow as pa
from pyarrow import compute as pc
from pyarrow import csv as pa_csv
from sqlalchemy import BigInteger, Column, Connection, Executable, Integer, Table, Text, text
from sqlalchemy.dialects import postgresql, sqlite

from recon_assets.ledger.schema import ExactDecimal, UtcDateTime
from recon_assets.money import to_decimal

_CHUNK = 100_000
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False)


def can_copy(conn: Connection) -> bool:
    """Whether :func:`copy_frame` works on this connection (PostgreSQL through psycopg 3)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


#: Rows bound per insert-ignore statement.
INSERT_BATCH = 1000


def insert_new(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert-ignore ``rows`` in batches (``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL,
    ``INSERT OR IGNORE`` on SQLite) and say how many were new, by the table's first key
    column. A row another writer stored first, or is storing meanwhile in a concurrent run,
    is left as it is: no read-then-insert window in which both insert."""
    if conn.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing()
    elif conn.dialect.name == "sqlite":
        statement = sqlite.insert(table).prefix_with("OR IGNORE")
    else:
        raise NotImplementedError(f"no insert-ignore for {conn.dialect.name}")
    statement = statement.returning(list(table.primary_key.columns)[0])
    # Rows from DataFrames (to_dict, itertuples): NaN/NaT to None, Timestamps to datetimes.
    cleaned = [clean_row(dict(row)) for row in rows]
    return sum(len(conn.execute(statement, cleaned[start:start + INSERT_BATCH]).all())
               for start in range(0, len(cleaned), INSERT_BATCH))


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
               frame: pd.DataFrame, constants: Mapping[str, Any] | None = None) -> None:
    """COPY the frame's ``columns`` (named as the table's columns) into ``table``.

    ``table`` is a name the connection resolves (a temporary table works); ``columns`` give
    each value's type, so a value is written as that type would bind it. A column named in
    ``constants`` has that value in every row (made chunk by chunk: the frame is not copied
    to hold it).
    """
    copy_frames(conn, table, columns, [frame], constants)


def copy_frames(conn: Connection, table: str, columns: Sequence[Column],
                frames: Iterable[pd.DataFrame], constants: Mapping[str, Any] | None = None
                ) -> int:
    """:func:`copy_frame` of every frame in one COPY; return the rows copied.

    One statement, and each chunk's CSV rendered on a thread while the one before it goes to
    the server (the connection waits for the socket without the GIL): the server ingests
    while the client renders, where a COPY per frame, rendered and then sent, would leave one
    of them idle at a time. At most two chunks exist at once. ``frames`` may be a generator.
    """
    names = [c.name for c in columns]
    listed = ", ".join(f'"{n}"' for n in names)
    constants = constants or {}

    def rendered(chunk: pd.DataFrame) -> memoryview:
        arrays = [_csv_column(conn, pd.Series([constants[c.name]] * len(chunk))
                              if c.name in constants else chunk[c.name], c)
                  for c in columns]
        sink = io.BytesIO()
        pa_csv.write_csv(pa.table(arrays, names=names), sink, _CSV_OPTIONS)
        return sink.getbuffer()

    chunks = (frame.iloc[start:start + _CHUNK] for frame in frames
              for start in range(0, len(frame), _CHUNK))
    copied = 0
    with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(
            f'COPY "{table}" ({listed}) FROM STDIN (FORMAT csv)') as copy, \
            ThreadPoolExecutor(1, thread_name_prefix="copy-render") as renderer:
        pending = None
        for chunk in chunks:
            copied += len(chunk)
            following = renderer.submit(rendered, chunk)
            if pending is not None:
                copy.write(pending.result())
            pending = following
        if pending is not None:
            copy.write(pending.result())
    return copied


def _csv_column(conn: Connection, values: pd.Series, column: Column) -> pa.Array:
    """A column for the CSV writer: vectorized for the common types, else value by value."""
    if isinstance(values.dtype, pd.ArrowDtype) and (
            pa.types.is_decimal(values.dtype.pyarrow_dtype)
            or pa.types.is_string(values.dtype.pyarrow_dtype)):
        return pa.array(values)
    if pd.api.types.is_datetime64_dtype(values.dtype):  # naive is UTC (UtcDateTime)
        values = values.dt.tz_localize("UTC")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        # Written naive plus "+00": Arrow formats zoned times ten times slower. Floored and
        # cast in Arrow (the values are UTC whatever the zone): half the time of pandas.
        stamps = pc.floor_temporal(pa.array(values.array), unit="microsecond")
        return pc.binary_join_element_wise(
            stamps.cast(pa.timestamp("us")).cast(pa.string()), "+00", "")
    if pd.api.types.is_bool_dtype(values.dtype):
        return pa.array(values, type=pa.bool_())
    if pd.api.types.is_integer_dtype(values.dtype):
        return pa.array(values, type=pa.int64())
    if isinstance(column.type, ExactDecimal):
        # A finite Decimal binds as itself: format it here, not through _as_text's three
        # calls per value (a page of fills has 3,000 of them).
        return pa.array([format(v, "f") if type(v) is Decimal and v.is_finite()
                         else _as_text(conn, v, column) for v in values.tolist()],
                        type=pa.string())
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


def copy_out(conn: Connection, query: Executable, columns: Sequence[Column]) -> pd.DataFrame:
    """The rows of ``query`` (whose result columns are ``columns``, in order) read with
    ``COPY ... TO STDOUT`` as CSV straight into Arrow, on the caller's transaction; its
    values stay parameters, which psycopg binds (COPY takes no server-side parameters).

    The driver makes no Python object per value: text stays Arrow strings (NULL apart from
    an empty string), times are read in UTC, and exact decimals become Arrow decimal columns
    (:func:`decimal_column`). For connections where :func:`can_copy` holds.
    """
    names = [c.name for c in columns]
    types = {c.name: _arrow_type(c) for c in columns}
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    statement = str(compiled)
    sink = io.BytesIO()
    conn.execute(text("SET LOCAL TimeZone = 'UTC'"))  # times as UTC text, whatever the zone
    conn.execute(text("SET LOCAL DateStyle = 'ISO'"))
    with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(
            f"COPY ({statement}) TO STDOUT (FORMAT csv)", compiled.params) as copy:
        for data in copy:
            sink.write(data)
    if not sink.tell():  # no rows: the CSV reader refuses an empty file
        table = pa.table({n: pa.array([], type=t) for n, t in types.items()})
    else:
        table = pa_csv.read_csv(
            pa.BufferReader(sink.getbuffer()),  # no copy of the CSV text
            read_options=pa_csv.ReadOptions(column_names=names),
            # NULL is the unquoted empty field only: a text 'NaN' or 'null' stays a value
            convert_options=pa_csv.ConvertOptions(column_types=types, null_values=[""],
                                                  strings_can_be_null=True,
                                                  quoted_strings_can_be_null=False))
    del sink  # the CSV text goes before the frame is built (it is the size of the rows)
    frame = {}
    for column in columns:
        values = table.column(column.name)
        frame[column.name] = (decimal_column(values) if isinstance(column.type, ExactDecimal)
                              else values.to_pandas())
    return pd.DataFrame(frame, columns=names)


def decimal_column(values: pa.ChunkedArray | pa.Array) -> pd.Series:
    """Decimal text (as NUMERIC prints it) as an Arrow ``decimal128`` column at the most
    places any value has, so every value keeps its exact value without a Python object;
    Decimal objects (:func:`recon_assets.money.to_decimal`) when some value is not plain
    digits or would not fit 38 digits."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    plain = pc.match_substring_regex(values, r"^-?[0-9]+(\.[0-9]+)?$")
    if len(values) and bool(pc.all(pc.or_kleene(plain, pc.is_null(values))).as_py()):
        length = pc.utf8_length(values)
        dot = pc.find_substring(values, ".")
        places = pc.if_else(pc.less(dot, 0), 0, pc.subtract(pc.subtract(length, dot), 1))
        digits = pc.subtract(pc.if_else(pc.less(dot, 0), length, dot),
                             pc.cast(pc.starts_with(values, "-"), pa.int32()))
        scale = int(pc.max(places).as_py() or 0)
        if int(pc.max(digits).as_py() or 0) + scale <= 38:
            return pd.Series(pd.arrays.ArrowExtensionArray(
                pc.cast(values, pa.decimal128(38, scale))))
    return pd.Series([to_decimal(v) for v in values.to_pylist()], dtype=object)


def decimal_objects(values: pd.Series) -> pd.Series:
    """A money column as Decimal objects, ``None`` where missing (Arrow decimals converted
    by Arrow, not value by value in Python)."""
    if isinstance(values.dtype, pd.ArrowDtype):
        return pd.Series(pa.array(values.array).to_pylist(), dtype=object, name=values.name)
    return values


def _arrow_type(column: Column) -> pa.DataType:
    if isinstance(column.type, UtcDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(column.type, (Integer, BigInteger)):
        return pa.int64()
    return pa.string()  # text, and decimals until decimal_column reads them
