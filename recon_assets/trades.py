"""The order frame every domain shares: ``trade_records`` columns, normalized and exact.

A *trades frame* has the columns of :data:`TRADE_COLUMNS`, one row per order:
``order_id`` and ``symbol`` strings, ``side`` ``"buy"``/``"sell"``, ``order_time`` a UTC
``pandas.Timestamp``, and ``price``, ``size``, ``total_fees_usd`` as ``Decimal`` objects
(fee NULL read as 0). Ledger rows, exchange orders and API callers all go through
:func:`normalize_trades`, so bad input is reported the same way everywhere: by order id and
field, never as a stack trace from deep inside a computation.

Ledgers reach a million rows, so each column is checked vectorized and only the rows that look
suspicious go through :func:`_check_row`, the one place that words the problems: a fast path
may send a good row there (it comes back clean), never let a bad row through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recon_assets.errors import BadRowError
from recon_assets.money import (EXACT, MAX_MAGNITUDE, MAX_PLACES, NotADecimal, implausible,
                                 to_decimal)
from recon_assets.scaled import (Scaled, read_text_at, sample_places,
                                 sample_rows, scale_arrow, scale_decimals, try_scale_decimals)

TRADE_COLUMNS = ["order_id", "symbol", "side", "order_time", "price", "size", "total_fees_usd"]
MONEY_COLUMNS = ["price", "size", "total_fees_usd"]
SIDES = ("buy", "sell")

_ZERO = Decimal(0)
_INFINITY = Decimal("Infinity")
#: A value shifted this many places must be whole to have at most MAX_PLACES places.
_PLACES_SHIFT = Decimal(10) ** MAX_PLACES
#: Below this magnitude a float's shortest repr can have more than MAX_PLACES places.
_TINY_FLOAT = 1e-13
#: Rows per step where a Python object is made per value (:func:`_in_range`, :func:`_each`).
_BLOCK = 65_536


@dataclass(frozen=True)
class TradeArrays:
    """A trades frame's columns in the integer forms FIFO computes with, row for row.

    ``money`` holds ``price``, ``size`` and ``total_fees_usd`` as exact scaled integers;
    ``symbol_codes`` index ``symbol_names`` (sorted), so code order is symbol order.
    ``given`` are the money columns as given, row for row, for :meth:`written`.
    """

    money: dict[str, Scaled]
    symbol_codes: np.ndarray
    symbol_names: np.ndarray
    is_sell: np.ndarray
    given: dict[str, pd.Series]

    def written(self, column: str, rows: np.ndarray) -> list[Decimal]:
        """:func:`written` of the money column ``column`` as given."""
        return written(self.given[column], rows)


@dataclass
class NormalizedTrades:
    """The usable rows, and a ``(order_id, field, message)`` entry for each unusable one."""

    trades: pd.DataFrame
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    #: ``trades`` as :class:`TradeArrays`, when :func:`normalize_trades_scaled` could keep
    #: them (every row kept as given, every money value read by the fast path).
    arrays: TradeArrays | None = field(default=None, repr=False, compare=False)
    #: The ledger fingerprint of exactly the rows read, bad ones included, as
    #: ``LedgerFingerprint.by_symbol`` words a symbol's (a ledger read that was asked for it,
    #: on PostgreSQL); None otherwise.
    fingerprint: str | None = field(default=None, compare=False)

    @property
    def bad_order_ids(self) -> list[str]:
        return sorted({p[0] for p in self.problems})

    def raise_if_bad(self, what: str = "ledger rows") -> pd.DataFrame:
        """Return the trades, or raise :class:`BadRowError` listing every problem."""
        if self.problems:
            raise BadRowError(what, self.problems)
        return self.trades


def written(given: pd.Series, rows: np.ndarray) -> list[Decimal]:
    """The Decimals of a money column at ``rows`` as written, with their own exponent
    (``"1.50"`` keeps its zero, which scaled integers do not): for the few values a message
    quotes. A missing fee is 0."""
    values = [to_decimal(v) for v in given.iloc[rows].tolist()]
    return [_ZERO if v is None else v for v in values]


def empty_trades() -> pd.DataFrame:
    """A trades frame with no rows and the right dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in TRADE_COLUMNS})
    frame["order_time"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def normalize_trades(raw: pd.DataFrame, *, plausible: bool = False) -> NormalizedTrades:
    """Validate and normalize rows with the ``trade_records`` columns into a trades frame.

    Sides are read case-insensitively, naive times are UTC, money goes through
    :func:`recon_assets.money.to_decimal` (floats by their shortest representation). A row
    with a missing or malformed field, a non-positive size or price, an unknown side, or an
    order id seen twice is left out and reported. With ``plausible`` (the ledger gateway's
    reads), so is a value :func:`recon_assets.money.implausible` refuses: outside data never
    carries such values, while the pure functions stay exact for any finite value.
    """
    return _normalize(raw, scale=False, plausible=plausible)


def normalize_trades_scaled(raw: pd.DataFrame, *, plausible: bool = False
                            ) -> NormalizedTrades:
    """:func:`normalize_trades`, also keeping the columns as :class:`TradeArrays`.

    The integers (:func:`recon_assets.scaled.try_scale_decimals`) replace the range checks,
    and the codes the symbol and side checks make are kept, so FIFO reads each value once.
    Decimal strings, finite floats and Arrow decimal columns are read into the integers
    without a Python object per value (strings and floats' shortest reprs through pyarrow's
    decimal parser, at the places :func:`try_scale_decimals` would choose for their Decimals);
    such a column then comes back as an exact Arrow decimal column, not Decimal objects
    (``.tolist()`` gives Decimals of the same values; :meth:`TradeArrays.written` gives them
    as written). ``arrays`` is None unless every row was kept as given and all three money
    columns took those paths (:func:`trade_arrays` then makes them from the frame, whose money
    is then Decimal objects, as :func:`normalize_trades` gives it).
    """
    return _normalize(raw, scale=True, plausible=plausible)


def trade_arrays(trades: pd.DataFrame) -> TradeArrays:
    """The :class:`TradeArrays` of a normalized trades frame."""
    codes, names = pd.factorize(trades["symbol"], sort=True)
    money = {c: scale_decimals(trades[c].to_numpy(dtype=object)) for c in MONEY_COLUMNS}
    return TradeArrays(money, codes, np.asarray(names, dtype=object),
                       (trades["side"] == "sell").to_numpy(),
                       {c: trades[c] for c in MONEY_COLUMNS})


def _normalize(raw: pd.DataFrame, *, scale: bool, plausible: bool) -> NormalizedTrades:
    missing_cols = [c for c in TRADE_COLUMNS if c not in raw.columns and c != "total_fees_usd"]
    if missing_cols:
        raise BadRowError("trade frame", [("*", c, "column missing") for c in missing_cols])
    n = len(raw)
    if n == 0:
        return NormalizedTrades(empty_trades())
    fees_in = (raw["total_fees_usd"] if "total_fees_usd" in raw.columns
               else pd.Series([None] * n, dtype=object))
    ids = _order_ids(raw["order_id"])
    # Equal ids have equal hashes, and Python keeps each string's hash: ids are compared
    # only when two hashes are equal (a duplicate, or a rare collision).
    hashes = np.fromiter(map(hash, ids), dtype=np.int64, count=n)
    in_order = np.sort(hashes)
    duplicated = np.zeros(n, dtype=bool)
    if (in_order[1:] == in_order[:-1]).any():
        duplicated = pd.Series(ids, dtype=object).duplicated(keep=False).to_numpy() & (ids != "")
    values: dict[str, Any] = {"order_id": ids}
    symbols, sides = _labels(raw["symbol"], _symbol), _labels(raw["side"], _side)
    values["symbol"], symbol_ok = symbols.values, symbols.ok
    values["side"], side_ok = sides.values, sides.ok
    values["order_time"], time_ok = _utc_times(raw["order_time"])
    given = {"price": raw["price"], "size": raw["size"], "total_fees_usd": fees_in}
    money = {c: _decimals(given[c], positive=c != "total_fees_usd", scale=scale,
                          plausible=plausible) for c in MONEY_COLUMNS}
    has_id = (ids != "") if (hashes == hash("")).any() else np.ones(n, dtype=bool)
    clean = has_id & symbol_ok & side_ok & time_ok & np.logical_and.reduce(
        [m.ok for m in money.values()])
    keep = ~duplicated
    problems: list[tuple[int, tuple[str, str, str]]] = []
    first_dup = pd.Series(ids[duplicated]).drop_duplicates()
    for pos, oid in zip(np.flatnonzero(duplicated)[first_dup.index], first_dup):
        problems.append((int(pos), (oid, "order_id", "duplicate order id")))
    suspicious = np.flatnonzero(~clean & keep)
    scaled = (not len(suspicious) and keep.all()
              and all(m.scaled is not None for m in money.values()))
    for c, m in money.items():
        # A column read without Decimal objects gets them after all when it is filtered or
        # patched, or FIFO reads the frame; these are the objects the careful path makes.
        values[c] = m.exact if scaled and m.values is None else (
            m.values if m.values is not None
            else _decimals(given[c], positive=c != "total_fees_usd", plausible=plausible).values)
    raw_rows = {c: (raw[c] if c in raw.columns else fees_in).tolist()
                for c in TRADE_COLUMNS[1:]} if len(suspicious) else {}
    for pos in suspicious:
        row_problems, row = _check_row(ids[pos], int(pos),
                                       {c: column[pos] for c, column in raw_rows.items()},
                                       plausible)
        if row_problems:
            problems.extend((int(pos), p) for p in row_problems)
            keep[pos] = False
        else:
            for column, value in row.items():
                values[column][pos] = value
    problems.sort(key=lambda item: item[0])
    if not keep.any():
        return NormalizedTrades(empty_trades(), [p for _, p in problems])
    rows = slice(None) if keep.all() else keep
    arrays = None
    if scaled:
        is_sell = sides.codes == sides.code("sell")
        arrays = TradeArrays({c: m.scaled for c, m in money.items()}, symbols.codes,
                             symbols.names, is_sell, given)
    # Columns but the ids are arrays made here (money copied in _decimals): no second copy.
    columns = [values[c][rows].reset_index(drop=True).rename(c)
               if isinstance(values[c], pd.Series)
               else pd.Series(values[c][rows], dtype=object, name=c, copy=c == "order_id")
               for c in TRADE_COLUMNS]
    # concat, unlike the DataFrame constructor, neither re-infers nor consolidates columns.
    return NormalizedTrades(pd.concat(columns, axis=1), [p for _, p in problems], arrays)


def _order_ids(column: pd.Series) -> np.ndarray:
    """Order ids as text; a missing id becomes ``""`` (reported as missing)."""
    # Objects inferred "string" are all str; a string dtype may still hold missing values.
    if (pd.api.types.infer_dtype(column, skipna=False) == "string"
            and (column.dtype == object or not column.isna().any())):
        return column.to_numpy(dtype=object)
    return np.array(["" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                     for v in column.tolist()], dtype=object)


def _symbol(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _side(value: Any) -> str | None:
    side = value.strip().lower() if isinstance(value, str) else None
    return side if side in SIDES else None


@dataclass(frozen=True)
class _Labels:
    """A cleaned text column: values (None where unusable), which are usable, and codes into
    the sorted distinct clean values ``names`` (-1 where unusable)."""

    values: np.ndarray
    ok: np.ndarray
    codes: np.ndarray
    names: np.ndarray

    def code(self, name: str) -> int:
        """The code of ``name`` (-2, which no row has, when no row has that value)."""
        found = np.flatnonzero(self.names == name)
        return int(found[0]) if len(found) else -2


def _labels(column: pd.Series, clean: Callable[[Any], str | None]) -> _Labels:
    """Clean a low-cardinality text column once per distinct value, not once per row."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    cleaned = np.array([clean(u) for u in uniques] + [None], dtype=object)
    names = np.array(sorted({c for c in cleaned if c is not None}), dtype=object)
    rank = {name: i for i, name in enumerate(names)}
    recode = np.array([rank.get(c, -1) for c in cleaned], dtype=np.int64)
    # code -1 (missing) picks the trailing None
    return _Labels(cleaned[codes], np.not_equal(cleaned, None)[codes], recode[codes], names)


def _utc_times(column: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps, NaT where the value is missing or could not be read in bulk."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        times = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    elif isinstance(column.dtype, pd.DatetimeTZDtype):
        times = column.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(column.dtype):
        times = column.dt.tz_localize("UTC")
    else:
        times = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    times = times.reset_index(drop=True)
    return times, times.notna().to_numpy()


@dataclass(frozen=True)
class _Money:
    """A money column as :func:`_decimals` read it: exact Decimals (None when read without
    them, into ``scaled`` and the Arrow column ``exact``), and which rows are certainly fine."""

    values: np.ndarray | None
    ok: np.ndarray
    scaled: Scaled | None = None
    exact: pd.Series | None = None


def _decimals(column: pd.Series, *, positive: bool, scale: bool = False,
              plausible: bool = False) -> _Money:
    """Exact Decimals, which rows are certainly fine (the others get a closer look), and
    with ``scale`` the values as scaled integers when the column reads on a fast path.

    A fee (``positive=False``) may be NULL, read as 0; a price or size must be positive;
    with ``plausible`` every value must also pass :func:`_implausible`.
    """
    kind = pd.api.types.infer_dtype(column, skipna=False)
    if scale:
        quick = _without_objects(column, kind, plausible)
        if quick is not None:
            scaled, exact = quick
            return _Money(None, _scaled_ok(scaled, positive, plausible), scaled, exact)
    values = None
    if kind == "decimal":
        values = column.to_numpy(dtype=object, copy=True)
        ok = np.ones(len(values), dtype=bool)
    elif kind == "floating":
        values = np.fromiter(map(Decimal, map(float.__repr__, _each(column))), dtype=object,
                             count=len(column))
        ok = _finite_floats(column.to_numpy(dtype=float), plausible)
    elif kind == "string":
        try:  # Decimal() strips blanks like to_decimal; any failure takes the careful path
            values = np.fromiter(map(Decimal, _each(column)), dtype=object, count=len(column))
            ok = np.ones(len(values), dtype=bool)
        except (InvalidOperation, TypeError, ValueError):
            values = None
    if values is not None and scale and ok.all():
        scaled = try_scale_decimals(values)
        if scaled is not None:
            return _Money(values, _scaled_ok(scaled, positive, plausible), scaled)
    if values is None:
        values = np.empty(len(column), dtype=object)
        ok = np.zeros(len(column), dtype=bool)
        for i, v in enumerate(column.tolist()):
            try:
                values[i] = to_decimal(v)
            except NotADecimal:
                continue
            if values[i] is None and not positive:
                values[i] = _ZERO
            ok[i] = values[i] is not None
    checked = np.flatnonzero(ok)
    ok[checked] = _in_range(values[checked], positive, plausible)
    return _Money(values, ok)


def _each(column: pd.Series) -> Iterator[Any]:
    """The column's values one by one, made Python objects a block at a time: a million
    strings from an Arrow column at once would be another 60 MiB beside their Decimals."""
    for start in range(0, len(column), _BLOCK):
        yield from column.iloc[start:start + _BLOCK].tolist()


def _finite_floats(floats: np.ndarray, plausible: bool) -> np.ndarray:
    """Which floats are finite (and, with ``plausible``, not so close to 0 that their repr
    could have more than MAX_PLACES places)."""
    ok = np.isfinite(floats)
    if plausible:
        ok &= ~((np.abs(floats) < _TINY_FLOAT) & (floats != 0))
    return ok


def _without_objects(column: pd.Series, kind: str, plausible: bool
                     ) -> tuple[Scaled, pd.Series] | None:
    """The column's exact values as int64 scaled integers, and as an Arrow decimal column,
    read with no Python object per value; None unless every value reads so.

    An Arrow decimal column is split from its own integers (:func:`_arrow_scaled`). Finite
    floats and decimal strings go through pyarrow's text parsing (floats by pyarrow's
    shortest round-trip form, the digits of their ``repr``) at the most places of the
    sample :func:`recon_assets.scaled.try_scale_decimals` looks at: exactly the integers it
    makes from the Decimals ``Decimal(repr(x))`` or ``Decimal(s)``, or None where it would
    not take that path (or pyarrow refuses a string, such as one with blanks).
    """
    if kind == "decimal":
        scaled = _arrow_scaled(column)
        return None if scaled is None else (scaled, column)
    if kind == "floating":
        floats = column.to_numpy(dtype=float)
        if not _finite_floats(floats, plausible).all():
            return None
        text = pc.cast(pa.array(floats), pa.string())
        sample = [Decimal(float.__repr__(v)) for v in floats[sample_rows(len(floats))].tolist()]
    elif kind == "string":
        try:
            text = pa.array(column.to_numpy(dtype=object), type=pa.string())
            sample = [Decimal(v) for v in column.iloc[sample_rows(len(column))].tolist()]
        except (InvalidOperation, TypeError, ValueError, pa.ArrowException):
            return None
    else:
        return None
    places = sample_places(sample)
    read = None if places is None or text.null_count else read_text_at(text, places)
    if read is None:
        return None
    scaled, exact = read
    zero = np.flatnonzero(scaled.mantissa == 0)  # a value pyarrow read as 0 must be 0
    if len(zero) and not all(Decimal(v).is_zero() for v in text.take(zero).to_pylist()):
        return None
    return scaled, pd.Series(pd.arrays.ArrowExtensionArray(exact), index=column.index)


def _arrow_scaled(column: pd.Series) -> Scaled | None:
    """An Arrow decimal column without nulls split straight from its integers (no objects);
    None for other columns, or when some value needs Python ints (the Decimals decide)."""
    if not (isinstance(column.dtype, pd.ArrowDtype)
            and pa.types.is_decimal(column.dtype.pyarrow_dtype)) or column.hasnans:
        return None
    scaled = scale_arrow(pa.array(column.array))
    return scaled if scaled.mantissa.dtype == np.int64 else None


def _scaled_ok(scaled: Scaled, positive: bool, plausible: bool) -> np.ndarray:
    """The range checks of :func:`_in_range` on scaled integers of finite values: positive
    iff the mantissa is, below 1e15 iff the mantissa is below ``10 ** (15 + places)``; more
    than MAX_PLACES places only where the value has them (places past 18 are a value's own
    fewest, :func:`recon_assets.scaled.scale_decimals`)."""
    small = ((np.abs(scaled.mantissa) < 10.0 ** (15 + scaled.places))
             & (scaled.places <= MAX_PLACES) if plausible
             else np.ones(len(scaled.mantissa), dtype=bool))
    return small & (scaled.mantissa > 0) if positive else small


def _in_range(values: np.ndarray, positive: bool, plausible: bool) -> np.ndarray:
    """Finite, plausible (:func:`_implausible`) when asked, and positive when asked:
    whole-array comparisons, then the places of the values still in."""
    upper = MAX_MAGNITUDE if plausible else _INFINITY
    lower = _ZERO if positive else -upper
    try:
        with localcontext(EXACT):  # a NaN traps instead of comparing False
            ok = ((values > lower) & (values < upper)).astype(bool)
            if plausible:
                inside = np.flatnonzero(ok)  # below 1e15, so shifted by 30 places still exact
                # A block at a time: each step makes a Decimal per value, and a million
                # rows at once would hold two million of them (about 200 MiB) at a time.
                for start in range(0, len(inside), _BLOCK):
                    rows = inside[start:start + _BLOCK]
                    ok[rows] = (values[rows] * _PLACES_SHIFT % 1 == 0).astype(bool)
            return ok
    except InvalidOperation:
        finite = np.fromiter(map(Decimal.is_finite, values), dtype=bool, count=len(values))
        finite[finite] = _in_range(values[finite], positive, plausible)
        return finite


def _implausible(value: Decimal) -> str | None:
    """:func:`recon_assets.money.implausible` of the value itself: trailing zeros are not
    places (``1.000...0`` is 1), which is what the whole-array check can see."""
    return implausible(value.normalize(EXACT))


def _check_row(oid: str, pos: int, raw: dict[str, Any], plausible: bool = False
               ) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """Every problem of one row, worded for people; or its normalized values when it has none."""
    label = oid or f"row {pos}"
    problems: list[tuple[str, str, str]] = []
    if not oid:
        problems.append((label, "order_id", "missing"))
    symbol = raw["symbol"]
    if _symbol(symbol) is None:
        problems.append((label, "symbol", f"missing or not text: {symbol!r}"))
    side = raw["side"]
    if _side(side) is None:
        problems.append((label, "side", f"unknown side {side!r} (want buy or sell)"))
    when = None
    try:
        when = _to_utc(raw["order_time"])
    except _NotATime as exc:
        problems.append((label, "order_time", str(exc)))
    money: dict[str, Decimal | None] = {}
    for name in MONEY_COLUMNS:
        try:
            money[name] = to_decimal(raw[name])
        except NotADecimal as exc:
            problems.append((label, name, str(exc)))
            continue
        problem = (_implausible(money[name]) if plausible and money[name] is not None
                   else None)
        if problem:
            problems.append((label, name, problem))
        elif name == "total_fees_usd":
            money[name] = money[name] if money[name] is not None else _ZERO
        elif money[name] is None:
            problems.append((label, name, "missing"))
        elif money[name] <= 0:
            problems.append((label, name, f"must be positive, got {money[name]}"))
    return problems, {"symbol": _symbol(symbol), "side": _side(side), "order_time": when,
                      **money}


class _NotATime(ValueError):
    """Why an ``order_time`` cannot be read, worded for the row's problem."""


def _to_utc(value: Any) -> pd.Timestamp:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        raise _NotATime("missing")
    if isinstance(value, (bool, int, float, Decimal, np.number, np.bool_)):
        # pandas would read 1700000000 as nanoseconds after 1970: silently wrong
        raise _NotATime(f"a number, not a time: {value!r} (store an ISO 8601 time)")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise _NotATime(f"not a time: {value!r}") from None
    if ts is pd.NaT:
        raise _NotATime("missing")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
