"""The fills archive (``exchange_fills``) and the sync bookkeeping (``sync_state``).

The exchange keeps fills for a limited time; the archive keeps them for good, one row per
``trade_id``, exactly as typed in the fills frame (money as exact decimals), beside it the
entries that are not fills and the conflicting reports of a trade (both for review). Writers take a
connection from :meth:`LedgerStore.begin` so the fills and the sync cursor that says how far
they go commit together or not at all.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Sequence

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, Text, bindparam, cast, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite

from recon_assets.exchange.models import (FILL_COLUMNS, FILL_TYPE, entry_key, fills_frame,
                                          is_fill, same_values, value_digest)
from recon_assets.ledger.bulk import can_copy, copy_frame, insert_new
from recon_assets.ledger.schema import (exchange_fill_conflicts, exchange_fill_entries,
                                        exchange_fills, sync_state)
from recon_assets.ledger.store import LedgerStore

BATCH_SIZE = 1000
#: Fills-frame columns the archive stores (``user_id`` identifies the account: not kept).
ARCHIVED = [c for c in FILL_COLUMNS if c in exchange_fills.c]
#: The archive's columns a COPY writes.
_COPIED = [exchange_fills.c[c] for c in [*ARCHIVED, "fetched_at"]]


def archive_fills(conn: Connection, fills: pd.DataFrame) -> int:
    """Archive what is new in a fills frame; return how many FILLs were new (entries and
    conflicting reports kept for review are not fills: :func:`under_review` counts them).

    FILLs go to ``exchange_fills``, one per ``trade_id``: the first report seen. A report of a
    known ``trade_id`` with other values (:func:`~recon_assets.exchange.models.same_values`),
    against the archive or within ``fills``, goes to ``exchange_fill_conflicts`` (once per
    version) for review; an identical re-read (the sync overlap) is nothing. Other entries
    (REVERSAL, CORRECTION, SYNTHETIC) go to ``exchange_fill_entries`` on their entry key.
    Existing rows are never changed, so archiving the same fills twice is a no-op. Inserts
    ``RETURNING`` the keys they really inserted count exactly on both backends even when
    another sync archives the same fills concurrently. On PostgreSQL new fills are first
    COPied straight into the archive (:mod:`recon_assets.ledger.bulk`), or, when another
    sync archived some of them meanwhile, into a temporary table and inserted from there in
    one statement; elsewhere they go in batches of bound rows.

    On PostgreSQL the FILLs of a page whose trade ids are distinct are COPied before anything
    is looked up: the archive's unique key refuses the COPY (rolled back to its savepoint)
    if it holds any of them, and only then are they looked up and compared as above. A sync
    that takes new fills (every page of a first sync) so saves the lookup, about a fifth of
    the database's time per page; a page that repeats archived fills (the sync's overlap) costs
    one refused COPY more.
    """
    if fills.empty:
        return 0
    fetched_at = datetime.now(timezone.utc)
    counted = is_fill(fills)
    trades, entries = fills[counted], fills[~counted]
    if len(entries):
        insert_new(conn, exchange_fill_entries, [
            {**row, "entry_key": entry_key(row), "fetched_at": fetched_at}
            for row in entries[ARCHIVED].to_dict("records")])
    if (can_copy(conn) and len(trades) and not trades["trade_id"].duplicated().any()
            and _copied(conn, trades.assign(fetched_at=fetched_at))):
        return len(trades)  # none was archived, so none is a re-read or a conflict
    archived = _archived(conn, trades["trade_id"])
    known = trades["trade_id"].isin(archived["trade_id"])
    unique = trades[~known].drop_duplicates("trade_id", keep="first")
    if known.any() or trades["trade_id"].duplicated().any():
        reference = pd.concat([archived, unique], ignore_index=True).set_index("trade_id")
        differs = ~same_values(trades, reference.loc[trades["trade_id"]])
    else:  # every fill is its own first report: nothing to compare
        differs = np.zeros(len(trades), dtype=bool)
    if differs.any():
        insert_new(conn, exchange_fill_conflicts, [
            {**row, "digest": value_digest(row), "seen_at": fetched_at}
            for row in trades[differs][ARCHIVED].to_dict("records")])
    if can_copy(conn) and len(unique):
        return _archive_by_copy(conn, unique.assign(fetched_at=fetched_at))
    return insert_new(conn, exchange_fills, [
        {**row, "fetched_at": fetched_at} for row in unique[ARCHIVED].to_dict("records")])


def _archived(conn: Connection, trade_ids: pd.Series) -> pd.DataFrame:
    """The archived fills of these trade ids: on PostgreSQL in one statement with the ids as
    one JSON array parameter (binding a thousand values, one by one or as an array, costs
    more CPU than the lookup), elsewhere in batches under the bound-parameter limit."""
    ids = sorted(set(trade_ids))
    query = select(*(exchange_fills.c[c] for c in ARCHIVED))
    if conn.dialect.name == "postgresql":
        listed = func.jsonb_array_elements_text(cast(bindparam("trade_ids", type_=Text),
                                                     postgresql.JSONB))
        rows = [dict(row._mapping) for row in conn.execute(
            query.where(exchange_fills.c.trade_id.in_(select(listed))),
            {"trade_ids": json.dumps(ids)})] if ids else []
    else:
        rows = [dict(row._mapping) for i in range(0, len(ids), BATCH_SIZE)
                for row in conn.execute(query.where(
                    exchange_fills.c.trade_id.in_(ids[i:i + BATCH_SIZE])))]
    return fills_frame(rows)[ARCHIVED]


def _copied(conn: Connection, fills: pd.DataFrame) -> bool:
    """COPY fills with distinct trade ids straight into the archive, under a savepoint;
    ``False`` (and rolled back to the savepoint) when the archive holds one of them."""
    try:
        with conn.begin_nested():
            copy_frame(conn, exchange_fills.name, _COPIED, fills)
        return True
    except psycopg.errors.UniqueViolation:
        return False


def _archive_by_copy(conn: Connection, fills: pd.DataFrame) -> int:
    """COPY fills none of which the archive held a moment ago straight into it
    (:func:`_copied`). Should another sync have archived one of them meanwhile, COPY them
    into a temporary table (dropped at commit) instead, then insert only the new ones in one
    statement."""
    if _copied(conn, fills):
        return len(fills)
    staging = f"fills_incoming_{uuid.uuid4().hex[:12]}"
    listed = ", ".join(f'"{c.name}"' for c in _COPIED)
    conn.execute(text(f'CREATE TEMPORARY TABLE "{staging}" '
                      f"(LIKE {exchange_fills.name} INCLUDING DEFAULTS) ON COMMIT DROP"))
    copy_frame(conn, staging, _COPIED, fills)
    return len(conn.execute(text(
        f'INSERT INTO {exchange_fills.name} ({listed}) SELECT {listed} FROM "{staging}" '
        "ON CONFLICT DO NOTHING RETURNING trade_id")).all())


def read_fills(store: LedgerStore, *, product_ids: Sequence[str] | None = None,
               order_ids: Sequence[str] | None = None, start: datetime | None = None,
               end: datetime | None = None) -> pd.DataFrame:
    """Everything archived, as an exact fills frame; ``start``/``end`` bound ``trade_time``
    inclusively.

    The fills, the non-FILL entries and the conflicting reports (``conflicting`` True): so a
    reader sees every report; :func:`recon_assets.reconcile.aggregate.countable` says which
    count. ``order_ids`` are matched in batches so any number of them stays under the
    database's bound-parameter limit.
    """
    queries = []
    for table in (exchange_fills, exchange_fill_entries, exchange_fill_conflicts):
        base = select(*(table.c[c] for c in ARCHIVED),
                      literal(table is exchange_fill_conflicts).label("conflicting"))
        if product_ids:
            base = base.where(table.c.product_id.in_(list(product_ids)))
        if start is not None:
            base = base.where(table.c.trade_time >= start)
        if end is not None:
            base = base.where(table.c.trade_time <= end)
        if order_ids is None:
            queries.append(base)
        else:
            ids = sorted(set(order_ids))
            queries += [base.where(table.c.order_id.in_(ids[i:i + BATCH_SIZE]))
                        for i in range(0, len(ids), BATCH_SIZE)]
    with store.connect() as conn:
        rows = [dict(row._mapping) for query in queries for row in conn.execute(query)]
    return fills_frame(rows)


def has_fills(conn: Connection) -> bool:
    """Whether the archive holds any fill (one indexed row is read, whatever its size)."""
    return conn.execute(select(exchange_fills.c.trade_id).limit(1)).first() is not None


def under_review(store: LedgerStore) -> tuple[int, int]:
    """How many conflicting reports and non-FILL entries the archive keeps for review
    (entries archived in ``exchange_fills`` before they were kept apart included)."""
    legacy = func.upper(exchange_fills.c.trade_type) != FILL_TYPE
    with store.connect() as conn:
        conflicts, entries, old = (conn.execute(query).scalar() or 0 for query in (
            select(func.count()).select_from(exchange_fill_conflicts),
            select(func.count()).select_from(exchange_fill_entries),
            select(func.count()).select_from(exchange_fills).where(legacy)))
    return conflicts, entries + old


def get_sync_value(conn: Connection, name: str) -> str | None:
    """The stored value of a sync setting (such as a cursor), or ``None`` if never set."""
    return conn.execute(select(sync_state.c.value).where(sync_state.c.name == name)).scalar()


def set_sync_value(conn: Connection, name: str, value: str) -> None:
    """Store a sync setting, replacing any previous value (an upsert on ``name``)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    now = datetime.now(timezone.utc)
    stmt = dialect.insert(sync_state).values(name=name, value=value, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=[sync_state.c.name],
                                            set_={"value": value, "updated_at": now}))


def delete_sync_value(conn: Connection, name: str) -> None:
    """Forget a sync setting (such as the progress record of a listing that completed)."""
    conn.execute(sync_state.delete().where(sync_state.c.name == name))
