"""The fills frame: Coinbase ``Fill`` objects as exact, typed columns.

A *fills frame* has the columns of :data:`FRAME_COLUMNS`: the Coinbase fields of
:data:`FILL_COLUMNS` (``trade_time`` and ``sequence_timestamp`` UTC ``pandas.Timestamp``;
``price``, ``size``, ``commission`` ``Decimal``; ``size_in_quote`` bool; ``side`` as the
exchange sends it, ``BUY``/``SELL``; the rest strings), then ``conflicting``: True for a later
report of an archived ``trade_id`` with other values (kept for review, never counted).

Everything that comes from the exchange (API pages) or the fills archive goes through this
module, so a bad fill is reported the same way everywhere: by ``trade_id`` and field.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import compute as pc

from recon_assets.money import EXACT, NotADecimal, implausible, to_decimal

FILL_COLUMNS = [
    "entry_id", "trade_id", "order_id", "trade_time", "trade_type", "price", "size",
    "commission", "product_id", "sequence_timestamp", "liquidity_indicator", "size_in_quote",
    "user_id", "side",
]
FRAME_COLUMNS = [*FILL_COLUMNS, "conflicting"]
TIME_COLUMNS = ("trade_time", "sequence_timestamp")
#: The one ``trade_type`` that is a trade of the order; a missing type is an older FILL.
FILL_TYPE = "FILL"
#: What two reports of one ``trade_id`` must agree on (times to the microsecond).
VALUE_COLUMNS = ["order_id", "product_id", "side", "trade_time", "price", "size",
                 "commission", "size_in_quote", "trade_type"]
_SAME_TIME = pd.Timedelta(microseconds=1)
FILL_SIDES = ("BUY", "SELL")
#: Any Coinbase product id: spot ``BTC-USD``, perpetual ``BTC-PERP-INTX``, future
#: ``BIT-31JAN25-CDE``. All are archived; only spot fills are reconciled.
PRODUCT_ID = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)+$")
#: Spot products: ``BASE-QUOTE``, the only ones the bot's ledger and FIFO hold.
SPOT_PRODUCT = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")
_OPTIONAL_TEXT = ("entry_id", "trade_type", "liquidity_indicator", "user_id")
_BOOL_TEXT = {"true": True, "false": False}


def fills_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A fills frame from rows whose values already have the frame's types.

    Used for rows that were validated before (the archive) and by :func:`normalize_fills`;
    missing optional columns become ``None``. Rows are ordered by trade time, then trade id,
    so frames compare equal whatever order the pages came in.
    """
    rows = list(rows)
    if not rows:
        return _empty_frame().copy()
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=object)
                          for c in FILL_COLUMNS})
    for col in TIME_COLUMNS:
        frame[col] = pd.to_datetime(frame[col], utc=True).dt.as_unit("ns")
    frame["size_in_quote"] = frame["size_in_quote"].astype(bool)
    frame["conflicting"] = pd.Series([bool(r.get("conflicting", False)) for r in rows],
                                     dtype=bool)
    return _ordered(frame)


@functools.cache
def _empty_frame() -> pd.DataFrame:
    """The typed empty fills frame (built once: a page of known fills reads none back)."""
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in FILL_COLUMNS})
    for col in TIME_COLUMNS:
        frame[col] = pd.Series([], dtype="datetime64[ns, UTC]")
    frame["size_in_quote"] = pd.Series([], dtype=bool)
    frame["conflicting"] = pd.Series([], dtype=bool)
    return frame


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by trade time, then trade id (stable: equal keys keep their input order; a
    missing time last)."""
    return frame.take(_order(frame["trade_time"], frame["trade_id"])).reset_index(drop=True)


def _order(times: Any, trade_ids: Any) -> np.ndarray:
    """The positions of :func:`_ordered`'s order, for times (datetimes, NaT missing) and
    trade ids. Arrow sorts a page several times faster than ``sort_values``."""
    keys = pa.table({"time": pa.array(times, from_pandas=True),
                     "id": pa.array(trade_ids, type=pa.string())})
    order = pc.sort_indices(keys, sort_keys=[("time", "ascending"), ("id", "ascending")])
    return order.to_numpy()


def is_spot(product_ids: pd.Series) -> np.ndarray:
    """Which fills are of a spot product (``BASE-QUOTE``), as opposed to derivatives."""
    return product_ids.astype(object).map(
        lambda p: isinstance(p, str) and SPOT_PRODUCT.match(p) is not None).to_numpy(dtype=bool)


def is_fill(fills: pd.DataFrame) -> np.ndarray:
    """Which rows are trades of their order (``trade_type`` FILL, or none given), as opposed
    to REVERSAL, CORRECTION or SYNTHETIC entries, which are kept for review, never counted."""
    if "trade_type" not in fills.columns:
        return np.ones(len(fills), dtype=bool)
    types = fills["trade_type"].astype(object)
    return (types.isna() | (types.str.upper() == FILL_TYPE)).to_numpy(dtype=bool)


def entry_key(fill: dict[str, Any]) -> str:
    """The archive key of a non-FILL entry: its ``entry_id``, else ``TYPE:trade_id``."""
    return fill.get("entry_id") or f"{fill['trade_type']}:{fill['trade_id']}"


def same_values(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Row by row, whether two aligned frames report the same trade: equal
    :data:`VALUE_COLUMNS`, decimals by value (``1.0`` is ``1``), times within a microsecond
    (one report may carry nanoseconds, another round them)."""
    same = np.ones(len(a), dtype=bool)
    for column in VALUE_COLUMNS:
        left, right = a[column].reset_index(drop=True), b[column].reset_index(drop=True)
        if column == "trade_time":
            equal = ((left - right).abs() <= _SAME_TIME).to_numpy(dtype=bool)
        else:
            equal = (left.isna() & right.isna()).to_numpy(dtype=bool) | np.asarray(
                left.to_numpy(dtype=object) == right.to_numpy(dtype=object), dtype=bool)
        same &= equal
    return same


def value_digest(fill: dict[str, Any]) -> str:
    """A short hash of one report's :data:`VALUE_COLUMNS` (decimals normalized, time to the
    microsecond): a conflicting version is stored once however often it is re-read."""
    parts = []
    for column in VALUE_COLUMNS:
        value = fill.get(column)
        if isinstance(value, Decimal):
            value = format(value.normalize(EXACT), "f")
        elif isinstance(value, (pd.Timestamp, datetime)):
            value = pd.Timestamp(value).floor("us").isoformat()
        parts.append(f"{column}={value}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def api_time(when: datetime) -> str:
    """An RFC 3339 UTC timestamp with microseconds, as the Advanced Trade API takes it."""
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _time(value: Any) -> pd.Timestamp:
    """A UTC time floored to the microsecond: Coinbase may send nanoseconds
    (``...38.091377090Z``), both databases keep microseconds, and a frame must equal what the
    archive gives back (and convert to ``datetime`` without a warning about dropped digits).
    A fills frame holds nanosecond times: a moment outside their range (years 1677-2262) is
    not a time (``OutOfBoundsDatetime`` is a ``ValueError``)."""
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("us").as_unit("ns")


def _check_fill(fill: dict[str, Any], label: str
                ) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """One fill's typed values and its problems (empty when the fill is usable)."""
    problems: list[tuple[str, str, str]] = []
    out: dict[str, Any] = {"trade_id": label}

    def bad(field: str, message: str) -> None:
        problems.append((label, field, message))

    for field in ("order_id", "product_id", "side", "trade_time", "sequence_timestamp",
                  "price", "size", "commission", "size_in_quote"):
        if _missing(fill.get(field)):
            bad(field, "missing")
    for field in _OPTIONAL_TEXT:
        value = fill.get(field)
        out[field] = None if _missing(value) else str(value)
    adjustment = out["trade_type"] is not None and out["trade_type"].upper() != FILL_TYPE
    if not _missing(fill.get("order_id")):
        out["order_id"] = str(fill["order_id"])
    product = fill.get("product_id")
    if not _missing(product):
        if not isinstance(product, str) or not PRODUCT_ID.match(product):
            bad("product_id", f"not BASE-QUOTE (nor a derivative such as BTC-PERP-INTX): "
                              f"{product!r}")
        out["product_id"] = product
    side = fill.get("side")
    if not _missing(side):
        out["side"] = side.strip().upper() if isinstance(side, str) else None
        if out["side"] not in FILL_SIDES:
            bad("side", f"unknown side {side!r} (want BUY or SELL)")
    for field in TIME_COLUMNS:
        if not _missing(fill.get(field)):
            try:
                out[field] = _time(fill[field])
            except (ValueError, TypeError):
                bad(field, f"not a time: {fill[field]!r}")
    for field in ("price", "size", "commission"):
        if _missing(fill.get(field)):
            continue
        try:
            value = to_decimal(fill[field])
        except NotADecimal as exc:
            bad(field, str(exc))
            continue
        out[field] = value
        if implausible(value):
            bad(field, implausible(value))
        elif adjustment:  # a reversal or correction may carry any sign: it is not counted
            continue
        elif field == "commission" and value < 0:
            bad(field, f"must not be negative, got {value}")
        elif field != "commission" and value <= 0:
            bad(field, f"must be positive, got {value}")
    in_quote = fill.get("size_in_quote")
    if isinstance(in_quote, bool):
        out["size_in_quote"] = in_quote
    elif isinstance(in_quote, str) and in_quote.strip().lower() in _BOOL_TEXT:
        out["size_in_quote"] = _BOOL_TEXT[in_quote.strip().lower()]
    elif not _missing(in_quote):
        bad("size_in_quote", f"not a boolean: {in_quote!r}")
    return out, problems


def normalize_fills(records: list[dict[str, Any]]
                    ) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Validate Coinbase ``Fill`` dicts into a fills frame and a list of problems.

    Every field a reconciliation needs must be present and sane: positive ``price`` and
    ``size``, non-negative ``commission`` (any sign for a non-FILL entry, which is never
    counted), each a plausible amount (:func:`recon_assets.money.implausible`: ``1e400``
    would be archived, aggregated and backfilled into the ledger otherwise), ``side``
    BUY/SELL (any case), ``product_id`` a Coinbase product id (spot or not, see
    :data:`PRODUCT_ID`), parseable times (floored to microseconds), ``size_in_quote`` a bool
    or ``"true"``/``"false"``. A bad fill is left out and reported as
    ``(trade_id, field, message)``. Fills repeating a ``trade_id`` are all kept: the archive
    tells a re-read from a conflicting report (:func:`same_values`).

    A page holds a thousand fills, so each column is screened and typed at once
    (:func:`_plain_fills`); only the rows that look unusual in any way (a JSON number, a
    lowercase side, a negative amount, a non-FILL entry's sign, anything missing) go through
    :func:`_check_fill`, the one place that words the problems. The screen may send a good
    row there (it comes back clean), never let a bad row through.
    """
    records = list(records)
    if not records:
        return _empty_frame().copy(), []
    plain, typed = _plain_fills(_record_columns(records))
    keep = plain.copy()
    problems: list[tuple[str, str, str]] = []
    for i in np.flatnonzero(~plain):
        row, row_problems = _check_record(int(i), records[i])
        problems.extend(row_problems)
        if row is not None and not row_problems:
            keep[i] = True
            for column in FILL_COLUMNS:
                typed[column][i] = (row[column].value if column in TIME_COLUMNS
                                    else row[column])
    return _typed_frame(typed, keep), problems


def normalize_arrow(fills: pa.StructArray) -> pd.DataFrame | None:
    """:func:`normalize_fills` of a page of fills as Arrow's JSON reader parsed them (one
    struct per fill), when every fill is plain (:func:`_plain_fills`): the same frame,
    screened and typed from the columns without a Python object per value but the
    decimals. ``None`` when some fill is not plain: that page goes through
    :func:`normalize_fills` as dicts, which words each problem."""
    if not len(fills):
        return _empty_frame().copy()
    plain, typed = _plain_fills(_arrow_columns(fills))
    return _typed_frame(typed, plain) if plain.all() else None


def _typed_frame(typed: dict[str, np.ndarray], keep: np.ndarray) -> pd.DataFrame:
    """The fills frame of the ``keep`` rows of typed columns (times as int64 nanoseconds),
    put in :func:`_ordered`'s order before the frame is built (taking rows of a frame of
    object columns costs more than building it)."""
    rows = np.flatnonzero(keep)
    times = typed["trade_time"][rows].astype(np.int64).view("datetime64[ns]")
    rows = rows[_order(times, typed["trade_id"][rows])]
    columns: dict[str, Any] = {c: pd.Series(typed[c][rows], dtype=object)
                               for c in FILL_COLUMNS}
    for column in TIME_COLUMNS:
        columns[column] = pd.DatetimeIndex(typed[column][rows].astype(np.int64).view(
            "datetime64[ns]")).tz_localize("UTC")
    columns["size_in_quote"] = typed["size_in_quote"][rows].astype(bool)
    columns["conflicting"] = np.zeros(len(rows), dtype=bool)
    return pd.DataFrame(columns)


def _check_record(i: int, fill: Any) -> tuple[dict[str, Any] | None,
                                              list[tuple[str, str, str]]]:
    """Record ``i`` of a page, typed, and its problems (labelled ``row i`` when the record
    has no ``trade_id`` to name it by)."""
    if not isinstance(fill, dict):
        return None, [(f"row {i}", "fill", f"not an object: {type(fill).__name__}")]
    if _missing(fill.get("trade_id")):
        return None, [(f"row {i}", "trade_id", "missing")]
    return _check_fill(fill, str(fill["trade_id"]))


#: RE2 patterns (``$`` is the end of the text) that a field of a plain fill matches.
_VISIBLE = "[!-~]"  # some visible ASCII character: the text is not blank
_PRODUCT_RE2 = "^[A-Z0-9]+(-[A-Z0-9]+)+$"
_TIME_RE2 = (r"^(19|20|21)[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
             r"(\.[0-9]{1,9})?Z$")
#: Unsigned, under 1e15, at most MAX_PLACES places: plausible (money.implausible) for sure.
_AMOUNT_RE2 = r"^[0-9]{1,15}(\.[0-9]{1,30})?$"
_NONZERO_RE2 = "[1-9]"
_SIDE_RE2 = "^(BUY|SELL)$"


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    """Which values of a text column match the RE2 ``pattern`` (a null: False)."""
    found = pc.match_substring_regex(text, pattern)
    return found.fill_null(False).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class _Columns:
    """A page's fields column by column, as :func:`_plain_fills` screens them: ``text`` (a
    value that is not a ``str`` is null there), ``absent`` (the field missing or null),
    ``values`` (object arrays of the values as they came), ``objects`` (which records are
    objects at all) and ``real_bool`` (which ``size_in_quote`` are JSON booleans)."""

    text: dict[str, pa.Array]
    absent: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    objects: np.ndarray
    real_bool: np.ndarray


def _record_columns(records: list[Any]) -> _Columns:
    """The columns of ``Fill`` dicts (a record that is no dict has every field missing)."""
    dicts = [r if isinstance(r, dict) else {} for r in records]
    raw = {c: [r.get(c) for r in dicts] for c in FILL_COLUMNS}
    text = {}
    for column, values in raw.items():
        if set(map(type, values)) - {str, type(None)}:
            values = [v if type(v) is str else None for v in values]
        text[column] = pa.array(values, type=pa.string())
    return _Columns(
        text, {c: np.array([v is None for v in values]) for c, values in raw.items()},
        {c: np.array(values, dtype=object) for c, values in raw.items()},
        np.array([isinstance(r, dict) for r in records], dtype=bool),
        np.array([type(v) is bool for v in raw["size_in_quote"]], dtype=bool))


def _arrow_columns(fills: pa.StructArray) -> _Columns:
    """The columns of fills parsed by Arrow's JSON reader: a field of one JSON type
    throughout, so a column that is not text has no ``str`` in it."""
    fields = dict(zip((f.name for f in fills.type), fills.flatten()))
    n = len(fills)
    text, absent, values = {}, {}, {}
    for column in FILL_COLUMNS:
        field = fields.get(column, pa.nulls(n))
        absent[column] = field.is_null().to_numpy(zero_copy_only=False)
        text[column] = field if pa.types.is_string(field.type) else pa.nulls(n, pa.string())
        values[column] = (field.to_numpy(zero_copy_only=False).astype(object)
                          if pa.types.is_string(field.type) or pa.types.is_boolean(field.type)
                          else np.full(n, None, dtype=object))  # such a row is not plain
    flag = fields.get("size_in_quote", pa.nulls(n))
    real_bool = (~absent["size_in_quote"] if pa.types.is_boolean(flag.type)
                 else np.zeros(n, dtype=bool))
    return _Columns(text, absent, values, ~fills.is_null().to_numpy(zero_copy_only=False),
                    real_bool)


def _utc_nanoseconds(times: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SS[.fffffffff]`` texts (UTC) as int64 nanoseconds floored to the
    microsecond (see :func:`_time`); a text that is no real moment (``02-30``, ``24:00``)
    gives NaT."""
    try:
        parsed = times.astype("datetime64[ns]")
    except ValueError:
        parsed = np.array([_one_moment(t) for t in times], dtype="datetime64[ns]")
    nanoseconds = parsed.view(np.int64)
    return np.where(np.isnat(parsed), nanoseconds, nanoseconds - nanoseconds % 1000)


def _one_moment(text: str) -> np.datetime64:
    try:
        return np.datetime64(text, "ns")
    except ValueError:
        return np.datetime64("NaT", "ns")


def _plain_fills(columns: _Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which records are plain fills, and every column typed as :func:`_check_fill` would
    type it, row for row (object arrays; times as int64 nanoseconds since the epoch, UTC);
    the values of rows that are not plain are meaningless.

    A plain fill is an object with every required field present as text in its canonical
    form (``BUY``/``SELL``, a ``BASE-QUOTE`` or derivative product id, ``...T..:..:..[.f]Z``
    times from 1900 to 2199, unsigned amounts under 1e15 with at most 30 places, ``price``
    and ``size`` not zero), optional text absent or not blank, and a real bool
    ``size_in_quote``: its typed values are its own, with decimals and times parsed.
    """
    text = columns.text
    plain = columns.objects & columns.real_bool
    for column in ("trade_id", "order_id"):
        plain &= _matches(text[column], _VISIBLE)
    for column in _OPTIONAL_TEXT:
        plain &= _matches(text[column], _VISIBLE) | columns.absent[column]
    plain &= _matches(text["product_id"], _PRODUCT_RE2)
    plain &= _matches(text["side"], _SIDE_RE2)
    for column in ("price", "size", "commission"):
        plain &= _matches(text[column], _AMOUNT_RE2)
        if column != "commission":
            plain &= _matches(text[column], _NONZERO_RE2)
    typed = dict(columns.values)
    for column in TIME_COLUMNS:
        plain &= _matches(text[column], _TIME_RE2)
        texts = pc.if_else(pa.array(plain), text[column], "1970-01-01T00:00:00Z")
        nanoseconds = _utc_nanoseconds(pc.utf8_slice_codeunits(texts, 0, -1).to_numpy(
            zero_copy_only=False).astype(str))
        plain &= nanoseconds != np.iinfo(np.int64).min  # NaT
        typed[column] = nanoseconds
    for column in ("price", "size", "commission"):
        typed[column][plain] = [Decimal(v) for v in typed[column][plain]]
    return plain, typed
