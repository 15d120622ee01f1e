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

import hashlib
import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

import numpy as np
import pandas as pd

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
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=object)
                          for c in FILL_COLUMNS})
    for col in TIME_COLUMNS:
        frame[col] = pd.to_datetime(frame[col], utc=True).dt.as_unit("ns")
    frame["size_in_quote"] = frame["size_in_quote"].astype(bool)
    frame["conflicting"] = pd.Series([bool(r.get("conflicting", False)) for r in rows],
                                     dtype=bool)
    return frame.sort_values(["trade_time", "trade_id"], kind="stable").reset_index(drop=True)


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
    archive gives back (and convert to ``datetime`` without a warning about dropped digits)."""
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("us")


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
    """
    problems: list[tuple[str, str, str]] = []
    rows: list[dict[str, Any]] = []
    for i, fill in enumerate(records):
        if not isinstance(fill, dict):
            problems.append((f"row {i}", "fill", f"not an object: {type(fill).__name__}"))
            continue
        if _missing(fill.get("trade_id")):
            problems.append((f"row {i}", "trade_id", "missing"))
            continue
        typed, fill_problems = _check_fill(fill, str(fill["trade_id"]))
        problems.extend(fill_problems)
        if not fill_problems:
            rows.append(typed)
    return fills_frame(rows), problems
