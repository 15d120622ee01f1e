"""The backfill workflow (SPEC section 4): findings -> requests -> review -> rows in the ledger.

Requests live in ``backfill_requests``: ``pending`` -> ``approved`` or ``rejected`` ->
``applied``, each step with who and when. Applying inserts into ``trade_records`` only orders
that are not there, and never updates or deletes a row. Every function works in the caller's
transaction (``conn`` from ``LedgerStore.begin()`` or ``LedgerStore.locked("backfill")``), so
what one call does is committed or rolled back as a whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Sequence

import pandas as pd
from sqlalchemy import JSON, Connection, MetaData, Table, insert, select, update

from recon_assets.errors import EXIT_USAGE, LedgerError, ReconError
from recon_assets.ledger.schema import backfill_requests
from recon_assets.ledger.trade_reads import refuse_view
from recon_assets.money import decimal_str, to_decimal

PENDING, APPROVED, REJECTED, APPLIED = "pending", "approved", "rejected", "applied"
_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit


class RequestStateError(ReconError):
    """A backfill request does not exist or is not in the state the action needs."""

    exit_code = EXIT_USAGE

    def __init__(self, action: str, problems: dict[int, str]):
        self.problems = problems
        shown = "; ".join(f"request {rid}: {why}" for rid, why in sorted(problems.items()))
        super().__init__(f"cannot {action}: {shown}")


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


def _existing(conn: Connection, column: Any, values: Sequence[Any]) -> set[Any]:
    found: set[Any] = set()
    for start in range(0, len(values), _CHUNK):
        chunk = list(values[start:start + _CHUNK])
        found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def create_requests(conn: Connection, missing_orders: pd.DataFrame, *, tier: int, reason: str,
                    created_by: str, run_id: int | None) -> list[int]:
    """Create one ``pending`` request per missing order; return the new request ids.

    Idempotent: an order that already has a request (in any status) or is already in
    ``trade_records`` is skipped, so rerunning a tier never duplicates work or reviews.
    """
    orders = missing_orders.drop_duplicates("order_id")
    ids = [str(v) for v in orders["order_id"]]
    trades = Table("trade_records", MetaData(), autoload_with=conn)
    known = _existing(conn, backfill_requests.c.order_id, ids) | \
        _existing(conn, trades.c.order_id, ids)
    now = _now()
    rows = [{"order_id": str(r["order_id"]), "symbol": r["symbol"], "side": r["side"],
             "order_time": pd.Timestamp(r["order_time"]).to_pydatetime(),
             "price": to_decimal(r["price"]), "size": to_decimal(r["size"]),
             "total_fees_usd": _fee(r.get("total_fees_usd")),
             "tier": tier, "reason": reason, "status": PENDING, "created_at": now,
             "created_by": created_by, "reconciliation_run_id": run_id}
            for r in orders.to_dict("records") if str(r["order_id"]) not in known]
    if not rows:
        return []
    result = conn.execute(insert(backfill_requests).returning(
        backfill_requests.c.id, sort_by_parameter_order=True), rows)
    return [int(i) for i in result.scalars()]


def _fee(value: Any) -> Decimal:
    fee = to_decimal(value)
    return fee if fee is not None else Decimal(0)


def list_requests(conn: Connection, status: str | None = None) -> pd.DataFrame:
    """Every request (or those in ``status``), oldest first, money as ``Decimal``."""
    query = select(backfill_requests).order_by(backfill_requests.c.id)
    if status is not None:
        query = query.where(backfill_requests.c.status == status)
    rows = conn.execute(query).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=list(backfill_requests.c.keys()))


def _requests(conn: Connection, wanted: list[int]) -> dict[int, dict[str, Any]]:
    """The requests with these ids, locked against a concurrent review or apply."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = select(backfill_requests).where(
            backfill_requests.c.id.in_(wanted[start:start + _CHUNK])).with_for_update()
        found.update({r["id"]: dict(r) for r in conn.execute(query).mappings()})
    return found


def _decide(conn: Connection, ids: Iterable[int], by: str, status: str, action: str
            ) -> list[int]:
    wanted = sorted({int(i) for i in ids})
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
        requests = _requests(conn, list_requests(conn, APPROVED)["id"].tolist())
    else:
        wanted = sorted({int(i) for i in ids})
        requests = _requests(conn, wanted)
        problems = {rid: "no such request" for rid in set(wanted) - requests.keys()}
        problems.update({rid: f"is {r['status']}; only approved requests can be applied"
                         for rid, r in requests.items() if r["status"] in (PENDING, REJECTED)})
        if problems:
            raise RequestStateError("apply", problems)
    todo = [r for r in requests.values() if r["status"] == APPROVED]
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
