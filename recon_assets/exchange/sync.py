"""Incremental sync of exchange fills into the ledger's fills archive.

Each sync asks only for fills whose ``sequence_timestamp`` is at or after the last synced one
(minus a small overlap, because fills sharing a timestamp may straddle two syncs), pages
through every cursor, validates everything, and only then writes the new fills and the
advanced cursor in one transaction. A failure anywhere before that writes nothing, so the
next sync simply starts from the same place again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

import logging

import pandas as pd
from sqlalchemy import Connection

from recon_assets.errors import BadRowError, ConfigError
from recon_assets.exchange.client import ExchangeClient
from recon_assets.exchange.models import api_time, normalize_fills
from recon_assets.ledger.fills import archive_fills, get_sync_value, has_fills, set_sync_value
from recon_assets.ledger.store import LedgerStore

log = logging.getLogger(__name__)
#: Re-read this much before the cursor; duplicates are dropped on ``trade_id``.
OVERLAP = timedelta(seconds=2)
CURSOR_NAME = "exchange_fills.sequence_timestamp"
#: Which exchange (and account) the archived fills came from: ``ExchangeClient.source``.
SOURCE_NAME = "exchange_fills.source"


@dataclass(frozen=True)
class SyncResult:
    """What one sync did. Products and trade times describe the fetched fills (overlap
    included); ``requests`` counts every HTTP request, retries too."""

    fetched: int
    new_fills: int
    requests: int
    products: tuple[str, ...]
    first_trade_time: datetime | None
    last_trade_time: datetime | None
    cursor_before: str | None
    cursor_after: str | None


def cursor_name(product_ids: Sequence[str] | None) -> str:
    """The ``sync_state`` key: one cursor for all products, another per product selection,
    so a sync of BTC-USD alone never moves the all-products cursor past unfetched fills."""
    if not product_ids:
        return CURSOR_NAME
    return f"{CURSOR_NAME}:{','.join(sorted(set(product_ids)))}"


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two stored cursors (either may be missing)."""
    if a is None or b is None:
        return a or b
    return a if pd.Timestamp(a) >= pd.Timestamp(b) else b


def check_source(conn: Connection, source: str) -> str | None:
    """Refuse a sync that would mix two exchanges' fills in one archive, else say what to
    record: ``None`` (``source`` is recorded already), ``"first"`` (an empty archive) or
    ``"adopt"`` (fills archived before sources were recorded).

    Raises :class:`~recon_assets.errors.ConfigError` (exit 2) when the archive holds fills
    from another recorded source: reconciling the ledger against a mix of two accounts would
    report orders of one as missing from, or phantom in, the other.
    """
    recorded = get_sync_value(conn, SOURCE_NAME)
    if recorded == source:
        return None
    if not has_fills(conn):
        return "first"
    if recorded is not None:
        raise ConfigError(f"the fills archive holds fills from {recorded}; refusing to sync "
                          f"from {source} into it (point DATABASE_URL at this exchange's own "
                          "ledger, or configure the exchange the archive came from)")
    return "adopt"


def sync_fills(client: ExchangeClient, store: LedgerStore, *,
               product_ids: Sequence[str] | None = None,
               progress: Callable[[int], None] | None = None) -> SyncResult:
    """Fetch fills added since the last sync and archive the new ones with the new cursor.

    The first sync takes the exchange's whole history. ``progress`` is called with the number
    of fills on each page as it arrives (``tqdm.update`` fits). Raises
    :class:`~recon_assets.errors.ExchangeError` if the listing fails and
    :class:`~recon_assets.errors.BadRowError` naming each bad fill; either way nothing is
    archived and the cursor stays where it was. A client whose ``source`` differs from the one
    the non-empty archive was filled from is refused (:func:`check_source`) before anything
    is fetched.
    """
    name = cursor_name(product_ids)
    with store.connect() as conn:
        if check_source(conn, client.source) == "adopt":
            log.warning("the fills archive has no recorded source (it predates them); "
                        "adopting %s", client.source)
        before = get_sync_value(conn, name)
    start = pd.Timestamp(before) - OVERLAP if before else None
    requests_before = client.stats.requests
    records: list[dict] = []
    for page in client.iter_fills(product_ids=list(product_ids) if product_ids else None,
                                  start_sequence_timestamp=start):
        records.extend(page)
        if progress is not None:
            progress(len(page))
    fills, problems = normalize_fills(records)
    if problems:
        raise BadRowError("exchange fills", problems)
    fetched_max = api_time(fills["sequence_timestamp"].max()) if len(fills) else None
    with store.begin() as conn:
        new_fills = archive_fills(conn, fills)
        if check_source(conn, client.source) is not None:  # again: a sync may have raced
            set_sync_value(conn, SOURCE_NAME, client.source)
        after = _later(_later(before, get_sync_value(conn, name)), fetched_max)
        if after is not None and after != before:
            set_sync_value(conn, name, after)
    times = fills["trade_time"]
    return SyncResult(
        fetched=len(records),
        new_fills=new_fills,
        requests=client.stats.requests - requests_before,
        products=tuple(sorted(set(fills["product_id"]))),
        first_trade_time=times.min() if len(fills) else None,
        last_trade_time=times.max() if len(fills) else None,
        cursor_before=before,
        cursor_after=after,
    )
