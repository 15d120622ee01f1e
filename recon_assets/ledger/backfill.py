"""The backfill workflow (SPEC section 4): findings -> requests -> review -> rows in the ledger.

Requests live in ``backfill_requests``: ``pending`` -> ``approved`` or ``rejected`` ->
``applied``, each step with who and when. Applying inserts into ``trade_records`` only orders
that are not there, and never updates or deletes a row. Every function works in the caller's
transaction (``conn`` from ``LedgerStore.begin()`` or ``LedgerStore.locked("backfill")``), so
what one call does is committed or rolled back as a whole.

An order has at most one *open* request (``pending`` or ``approved``; a partial unique index
enforces it). After its request was ``applied`` an order that goes missing again gets a new
request, the old one kept as history. A ``rejected`` order stays rejected: later findings of
it create nothing, since a reviewer already decided it does not belong in the ledger.

Every order is validated before it becomes a request and again before it is written into
``trade_records`` (a request row may come from an older release or another tool).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import pandas as pd
from sqlalchemy import JSON, Connection, MetaData, Table, insert, select, type_coerce, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import NullType

from recon_assets.errors import EXIT_USAGE, BadRowError, LedgerError, ReconError
from recon_assets.ledger.schema import backfill_requests
from recon_assets.ledger.trade_reads import refuse_view
from recon_assets.money import NotADecimal, decimal_str, implausible
from recon_assets.trades import MONEY_COLUMNS, TRADE_COLUMNS, normalize_trades

PENDING, APPROVED, REJECTED, APPLIED = "pending", "approved", "rejected", "applied"
#: Request ids are positive 64-bit integers on both backends; anything else names no request.
MAX_ID = 2 ** 63 - 1
_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit


class RequestStateError(ReconError):
    """A backfill request does not exist or is not in the state the action needs."""

    exit_code = EXIT_USAGE

    def __init__(self, action: str, problems: dict[int, str], reason: str = ""):
        self.problems = problems
        shown = "; ".join(f"request {rid}: {why}" for rid, why in sorted(problems.items()))
        super().__init__(f"cannot {action}: {shown or reason}")


class InvalidRequestError(ReconError):
    """Approved requests whose values cannot be written into the ledger; nothing was applied.

    ``problems`` holds ``(request id, order id, field, message)`` tuples. Exit 2: the user
    can fix it by rejecting those requests.
    """

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[tuple[int, str, str, str]]):
        self.problems = problems
        shown = "; ".join(f"request {rid} (order {oid}): {name}: {why}"
                          for rid, oid, name, why in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        ids = " ".join(str(rid) for rid in sorted({p[0] for p in problems}))
        super().__init__(f"cannot apply: {shown}{more}; nothing was applied (reject them "
                         f"with `recon-assets backfill reject {ids}`)")


class UnfillableColumnError(LedgerError):
    """``trade_records`` has a NOT NULL column without a default that a backfill cannot fill."""

    def __init__(self, column: str):
        self.column = column
        super().__init__(f"trade_records.{column} is NOT NULL without a default and recon-assets "
                         f"has no value for it; nothing was written")


@dataclass(frozen=True)
class ApplyResult:
    """What one :func:`apply` did: requests marked applied, and rows actually inserted."""

    applied_ids: list[int] = field(default_factory=list)
    inserted_order_ids: list[str] = field(default_factory=list)
    #: Orders that reached ``trade_records`` some other way first: marked applied, not written.
    already_present_order_ids: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _existing(conn: Connection, column: Any, values: Sequence[Any], *where: Any) -> set[Any]:
    """Which of ``values`` occur in ``column`` (of rows also meeting ``where``)."""
    found: set[Any] = set()
    for start in range(0, len(values), _CHUNK):
        chunk = list(values[start:start + _CHUNK])
        found.update(conn.execute(select(column).where(column.in_(chunk), *where)).scalars())
    return found


def validate_orders(orders: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """The orders fit to be written into ``trade_records``, and ``(order id, field, message)``
    for each problem of the others.

    The ledger's own rules (:func:`recon_assets.trades.normalize_trades`: known side, symbol,
    time, positive finite size and price) plus what only a row we write must meet: every
    money value plausible (:func:`recon_assets.money.implausible`) and no negative fee.
    """
    normalized = normalize_trades(orders[[c for c in TRADE_COLUMNS if c in orders.columns]])
    problems = list(normalized.problems)
    good = normalized.trades
    for row in good.to_dict("records"):
        for name in MONEY_COLUMNS:
            why = implausible(row[name])
            if why is not None:
                problems.append((row["order_id"], name, why))
        if row["total_fees_usd"] < 0:
            problems.append((row["order_id"], "total_fees_usd",
                             f"must not be negative, got {row['total_fees_usd']}"))
    bad = {p[0] for p in problems}
    return good[~good["order_id"].isin(bad)].reset_index(drop=True), problems


def create_requests(conn: Connection, missing_orders: pd.DataFrame, *, tier: int, reason: str,
                    created_by: str, run_id: int | None) -> list[int]:
    """Create one ``pending`` request per missing order; return the new request ids.

    Idempotent: an order already in ``trade_records``, or with an open or rejected request,
    is skipped, so rerunning a tier never duplicates work or reviews; an order whose requests
    were all applied (it went missing again) gets a new one. Any finding that fails
    :func:`validate_orders` raises :class:`BadRowError` naming it, and nothing is requested.
    """
    orders, problems = validate_orders(missing_orders.drop_duplicates("order_id"))
    if problems:
        raise BadRowError("backfill findings (nothing was requested)", problems)
    ids = orders["order_id"].tolist()
    trades = Table("trade_records", MetaData(), autoload_with=conn)
    known = _existing(conn, trades.c.order_id, ids) | _existing(
        conn, backfill_requests.c.order_id, ids, backfill_requests.c.status != APPLIED)
    now = _now()
    rows = [{**r, "order_time": r["order_time"].to_pydatetime(),
             "tier": tier, "reason": reason, "status": PENDING, "created_at": now,
             "created_by": created_by, "reconciliation_run_id": run_id}
            for r in orders.to_dict("records") if r["order_id"] not in known]
    if not rows:
        return []
    result = conn.execute(insert(backfill_requests).returning(
        backfill_requests.c.id, sort_by_parameter_order=True), rows)
    return [int(i) for i in result.scalars()]


#: Request columns read as the database returns them, so a stored value that does not parse
#: reaches :func:`validate_orders` (which names it) instead of failing the read.
_RAW_NAMES = ("price", "size", "total_fees_usd", "order_time")
_RAW = [type_coerce(c, NullType()).label(c.name) if c.name in _RAW_NAMES else c
        for c in backfill_requests.c]


def list_requests(conn: Connection, status: str | None = None) -> pd.DataFrame:
    """Every request (or those in ``status``), oldest first, money as ``Decimal``.

    A stored value that cannot be read as its type (a hostile row) is shown as it is stored,
    so the request can still be listed and rejected.
    """
    query = select(*_RAW).order_by(backfill_requests.c.id)
    if status is not None:
        query = query.where(backfill_requests.c.status == status)
    rows = [{name: _readable(name, value, conn.dialect) for name, value in r.items()}
            for r in conn.execute(query).mappings()]
    return pd.DataFrame(rows, columns=list(backfill_requests.c.keys()))


def _readable(name: str, value: Any, dialect: Dialect) -> Any:
    """``value`` as its column type returns it, or as stored when that fails."""
    if name not in _RAW_NAMES:
        return value
    try:
        if isinstance(value, str) and name == "order_time":  # SQLite: naive UTC text
            return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()
        return backfill_requests.c[name].type.process_result_value(value, dialect)
    except (NotADecimal, ValueError):
        return value


def _requests(conn: Connection, wanted: list[int]) -> dict[int, dict[str, Any]]:
    """The requests with these ids (order values raw), locked against a concurrent review or
    apply."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = select(*_RAW).where(
            backfill_requests.c.id.in_(wanted[start:start + _CHUNK])).with_for_update()
        found.update({r["id"]: dict(r) for r in conn.execute(query).mappings()})
    return found


def _wanted(ids: Iterable[int], action: str) -> list[int]:
    """The distinct ids, sorted; no ids, or one no request can have, is refused up front
    (an id beyond 64 bits would otherwise fail inside the database driver)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        raise RequestStateError(action, {}, "no request ids given (`recon-assets backfill "
                                            "list` shows them)")
    bad = {i: f"not a request id (ids run from 1 to {MAX_ID})" for i in wanted
           if not 1 <= i <= MAX_ID}
    if bad:
        raise RequestStateError(action, bad)
    return wanted


def _decide(conn: Connection, ids: Iterable[int], by: str, status: str, action: str
            ) -> list[int]:
    wanted = _wanted(ids, action)
    requests = _requests(conn, wanted)
    problems = {rid: "no such request" for rid in set(wanted) - requests.keys()}
    problems.update({rid: f"is {r['status']}, not {PENDING}" for rid, r in requests.items()
                     if r["status"] != PENDING})
    if problems:
        raise RequestStateError(action, problems)
    chosen = sorted(requests)
    for start in range(0, len(chosen), _CHUNK):
        conn.execute(update(backfill_requests).where(
            backfill_requests.c.id.in_(chosen[start:start + _CHUNK])).values(
            status=status, decided_at=_now(), decided_by=by))
    return chosen


def approve(conn: Connection, ids: Iterable[int], by: str) -> list[int]:
    """Approve pending requests; any id that is unknown or not pending fails them all."""
    return _decide(conn, ids, by, APPROVED, "approve")


def reject(conn: Connection, ids: Iterable[int], by: str) -> list[int]:
    """Reject pending requests; any id that is unknown or not pending fails them all."""
    return _decide(conn, ids, by, REJECTED, "reject")


def apply(conn: Connection, ids: Iterable[int] | None, by: str) -> ApplyResult:
    """Insert the approved requests' orders into ``trade_records`` and mark them applied.

    ``ids`` None applies every approved request. Already applied ids are skipped (applying
    twice changes nothing); pending, rejected or unknown ids raise :class:`RequestStateError`.
    Only orders absent from ``trade_records`` are inserted; existing rows are never touched.
    BotTrader's extra columns are filled where they exist (``source``, ``trigger``,
    ``status``, ``ingest_via``, ``last_reconciled_at``, ``last_reconciled_via``); another NOT
    NULL column without a default raises :class:`UnfillableColumnError` before any write.
    Atomicity is the caller's transaction: on any error it rolls back, leaving nothing.
    """
    if ids is None:
        approved = select(backfill_requests.c.id).where(backfill_requests.c.status == APPROVED)
        requests = _requests(conn, [int(i) for i in conn.execute(approved).scalars()])
    else:
        wanted = _wanted(ids, "apply")
        requests = _requests(conn, wanted)
        problems = {rid: "no such request" for rid in set(wanted) - requests.keys()}
        problems.update({rid: f"is {r['status']}; only approved requests can be applied"
                         for rid, r in requests.items() if r["status"] in (PENDING, REJECTED)})
        if problems:
            raise RequestStateError("apply", problems)
    todo = _revalidated([r for r in requests.values() if r["status"] == APPROVED])
    if not todo:
        return ApplyResult()
    refuse_view(conn)
    trades = Table("trade_records", MetaData(), autoload_with=conn)
    present = _existing(conn, trades.c.order_id, [r["order_id"] for r in todo])
    now = _now()
    rows = [_trade_row(trades, r, now, conn.dialect.name) for r in todo
            if r["order_id"] not in present]
    _check_fillable(trades, rows)
    if rows:
        conn.execute(insert(trades), rows)
    done = sorted(r["id"] for r in todo)
    for start in range(0, len(done), _CHUNK):
        conn.execute(update(backfill_requests).where(
            backfill_requests.c.id.in_(done[start:start + _CHUNK])).values(
            status=APPLIED, applied_at=now, applied_by=by))
    return ApplyResult(applied_ids=done,
                       inserted_order_ids=[row["order_id"] for row in rows],
                       already_present_order_ids=sorted(r["order_id"] for r in todo
                                                        if r["order_id"] in present))


def _revalidated(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests with their order values validated and normalized, or, if any fails,
    :class:`InvalidRequestError` naming every failing request and field."""
    if not requests:
        return []
    raw = pd.DataFrame([{c: r[c] for c in TRADE_COLUMNS} for r in requests],
                       columns=TRADE_COLUMNS, dtype=object)
    orders, problems = validate_orders(raw)
    if problems:
        # normalize_trades names a row without an order id by its position
        by_label = {(str(r["order_id"]) if r["order_id"] else f"row {i}"): r
                    for i, r in enumerate(requests)}
        raise InvalidRequestError(sorted(
            (by_label[label]["id"], str(by_label[label]["order_id"]), name, why)
            for label, name, why in problems))
    clean = {row["order_id"]: row for row in orders.to_dict("records")}
    return [{**r, **clean[str(r["order_id"])],
             "order_time": clean[str(r["order_id"])]["order_time"].to_pydatetime()}
            for r in requests]


def _trade_row(trades: Table, request: dict[str, Any], now: datetime, dialect: str
               ) -> dict[str, Any]:
    """One ``trade_records`` row: the order's values plus the extras the table has."""
    def money(value: Any) -> Any:  # SQLite cannot bind Decimal: text, then column affinity
        return decimal_str(value) if dialect == "sqlite" else value

    trigger = {"trigger": "manual_backfill"}
    values = {
        "order_id": request["order_id"], "symbol": request["symbol"], "side": request["side"],
        "order_time": request["order_time"], "price": money(request["price"]),
        "size": money(request["size"]), "total_fees_usd": money(request["total_fees_usd"]),
        "source": "reconciliation", "status": "filled", "ingest_via": "reconciliation",
        "trigger": trigger, "last_reconciled_at": now,
        "last_reconciled_via": f"recon-assets tier {request['tier']}",
    }
    row = {name: value for name, value in values.items() if name in trades.c}
    for name in ("order_time", "last_reconciled_at"):  # SQLite keeps naive UTC (UtcDateTime)
        if name in row and dialect == "sqlite":
            row[name] = row[name].astimezone(timezone.utc).replace(tzinfo=None)
    if "trigger" in row and not isinstance(trades.c.trigger.type, JSON):
        row["trigger"] = json.dumps(trigger)  # a text column holding JSON
    return row


def _check_fillable(trades: Table, rows: list[dict[str, Any]]) -> None:
    """Refuse, before writing, a NOT NULL column that has no default and no value from us."""
    if not rows:
        return
    for column in trades.columns:
        has_default = (column.server_default is not None or column.identity is not None
                       or (column.primary_key and column.autoincrement is True))
        if not column.nullable and not has_default and column.name not in rows[0]:
            raise UnfillableColumnError(column.name)
