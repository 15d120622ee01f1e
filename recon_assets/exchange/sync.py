"""Incremental sync of exchange fills into the ledger's fills archive, page by page.

Each sync asks only for fills whose ``sequence_timestamp`` is at or after the last synced one
(minus a small overlap, because fills sharing a timestamp may straddle two syncs) and pages
through every cursor. Each page is validated and then archived in one transaction together
with a progress record of the listing (its ``start`` parameter, the server's cursor for the
next page, the latest ``sequence_timestamp`` archived so far). A sync that is interrupted (the
exchange fails, the process is killed, a bad fill on page k) keeps the pages committed before
it, and the next sync continues that listing from the stored cursor instead of starting over.
Only when the listing completes is the ``sequence_timestamp`` cursor advanced and the progress
record cleared, in the transaction of the last page. Nothing invalid is ever archived: a page
with a bad fill is refused whole, and the fills are deduplicated on ``trade_id``.

A sync is a pipeline, so it takes about as long as its paging (the network and database waits
release the GIL, and so does Arrow's parsing of each answer): the listing runs on a thread of
its own (:func:`fetched_ahead`), page k+2 is requested while page k+1 is validated and, on
PostgreSQL, pages k and k-1 are archived on connections of their own (:func:`_committer`).
Pages commit in listing order; a page is committed only after every page before it was, and
a page fetched, validated or archived ahead of a refused or failed one is dropped (the stored
cursor still points at it, so the next sync fetches it again). A failure is reported in page
order: a commit that fails is raised before a later page's bad fill or failed request.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterator, Sequence, TypeVar

import pandas as pd
from sqlalchemy import Connection, text

from recon_assets.errors import BadRowError, ConfigError
from recon_assets.exchange.client import ExchangeClient, Page
from recon_assets.exchange.models import api_time, normalize_arrow, normalize_fills
from recon_assets.ledger.fills import (archive_fills, delete_sync_value, get_sync_value,
                                       has_fills, set_sync_value)
from recon_assets.ledger.store import LedgerStore

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Re-read this much before the cursor; duplicates are dropped on ``trade_id``.
OVERLAP = timedelta(seconds=2)
CURSOR_NAME = "exchange_fills.sequence_timestamp"
#: The progress record of a listing under way (see :class:`Listing`).
LISTING_NAME = "exchange_fills.listing"
#: Which exchange (and account) the archived fills came from: ``ExchangeClient.source``.
SOURCE_NAME = "exchange_fills.source"
#: Pages committed at once on PostgreSQL, each on its own connection (:func:`_commit_page`):
#: the server ingests one page while the page before commits.
COMMIT_LANES = 2
#: How long a page's transaction waits for a lock another writer holds (see _commit_page).
PAGE_LOCK_TIMEOUT = "30s"


@dataclass(frozen=True)
class SyncResult:
    """What one sync did. Products and trade times describe the fills fetched by this sync
    (overlap included); ``requests`` counts every HTTP request, retries too; ``resumed`` says
    whether it continued a listing an earlier sync had not finished."""

    fetched: int
    new_fills: int
    requests: int
    products: tuple[str, ...]
    first_trade_time: datetime | None
    last_trade_time: datetime | None
    cursor_before: str | None
    cursor_after: str | None
    pages: int = 0
    resumed: bool = False


@dataclass(frozen=True)
class Listing:
    """How far a listing got: the ``start_sequence_timestamp`` it was asked with (a resumed
    listing must ask the same, or the server's cursor means nothing), the cursor of the next
    page, and the latest ``sequence_timestamp`` archived by its pages so far."""

    start: str | None
    cursor: str | None = None
    seen: str | None = None

    def to_json(self) -> str:
        return json.dumps({"start": self.start, "cursor": self.cursor, "seen": self.seen})

    @classmethod
    def from_json(cls, text: str) -> Listing | None:
        """The stored record, or ``None`` when it is unreadable (edited by hand, or written
        by another tool): the listing then simply starts over, which loses nothing."""
        try:
            data = json.loads(text)
            listing = cls(data["start"], data["cursor"], data["seen"])
            for moment in (listing.start, listing.seen):
                if moment is not None:
                    pd.Timestamp(moment)  # a time the server (and _later) can read
        except (ValueError, TypeError, KeyError):
            return None
        return listing if listing.cursor is None or isinstance(listing.cursor, str) else None


def _named(base: str, product_ids: Sequence[str] | None) -> str:
    return base if not product_ids else f"{base}:{','.join(sorted(set(product_ids)))}"


def cursor_name(product_ids: Sequence[str] | None) -> str:
    """The ``sync_state`` key: one cursor for all products, another per product selection,
    so a sync of BTC-USD alone never moves the all-products cursor past unfetched fills."""
    return _named(CURSOR_NAME, product_ids)


def listing_name(product_ids: Sequence[str] | None) -> str:
    """The ``sync_state`` key of the progress record, per product selection like the cursor."""
    return _named(LISTING_NAME, product_ids)


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


def fetched_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items`` as they come, drawn on a thread of their own one item ahead of the caller.

    The thread asks for item k+1 as soon as the caller has taken item k, so the request
    runs while the caller works on k; it never holds more than that one item. What the
    iterator raises reaches the caller in its place, after the items before it. Closing the
    generator (``contextlib.closing``: the caller stops on a bad page, an error or Ctrl-C)
    stops the thread once the request it is making returns, and waits for that, so nothing
    is left talking to the exchange; the item drawn ahead is dropped.
    """
    handed: queue.Queue[tuple[bool, object]] = queue.Queue()
    go_on: queue.Queue[bool] = queue.Queue()  # one answer per item handed: draw the next?
    done = object()

    def draw() -> None:
        try:
            for item in items:
                handed.put((True, item))
                if not go_on.get():
                    return
            handed.put((True, done))
        except Exception as exc:  # handed to the caller, raised there
            handed.put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=draw, name="fetched-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = handed.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is done:
                return
            go_on.put(True)
            yield item  # type: ignore[misc]
    finally:
        go_on.put(False)  # the thread stops at the item it is drawing, if any
        thread.join()


def sync_fills(client: ExchangeClient, store: LedgerStore, *,
               product_ids: Sequence[str] | None = None,
               progress: Callable[[int], None] | None = None,
               page_size: int = 1000) -> SyncResult:
    """Fetch fills added since the last sync and archive the new ones, page by page.

    The first sync takes the exchange's whole history. ``progress`` is called with the number
    of fills on each page once that page is committed (``tqdm.update`` fits). Raises
    :class:`~recon_assets.errors.ExchangeError` if the listing fails and
    :class:`~recon_assets.errors.BadRowError` naming each bad fill of a page; the pages before
    stay archived and the next sync resumes at the refused or failed page. A client whose
    ``source`` differs from the one the non-empty archive was filled from is refused
    (:func:`check_source`) before anything is fetched.
    """
    name, listing_key = cursor_name(product_ids), listing_name(product_ids)
    with store.connect() as conn:
        if check_source(conn, client.source) == "adopt":
            log.warning("the fills archive has no recorded source (it predates them); "
                        "adopting %s", client.source)
        before = get_sync_value(conn, name)
        stored = get_sync_value(conn, listing_key)
    listing = Listing.from_json(stored) if stored is not None else None
    if stored is not None and listing is None:
        log.warning("unreadable progress record %s; restarting the listing", listing_key)
    resumed = listing is not None
    if listing is None:
        listing = Listing(api_time(pd.Timestamp(before) - OVERLAP) if before else None)
    else:
        log.info("resuming the fills listing from %s at its last committed page",
                 listing.start or "the beginning")
    requests_before = client.stats.requests
    fetched = new_fills = pages = 0
    products: set[str] = set()
    times: list[pd.Timestamp] = []
    after = before
    in_flight: deque[tuple[Future[tuple[int, str | None]], Page, pd.DataFrame, set[object]]] = (
        deque())

    def committed(keep: int = 0) -> None:
        """Wait for the pages being committed, oldest first, until at most ``keep`` are in
        flight, and count them. A failed commit is raised once the pages after it (which it
        rolls back) have finished, so it is the failure reported."""
        nonlocal new_fills, after, pages, fetched
        while len(in_flight) > keep:
            future, page, fills, _ = in_flight.popleft()
            try:
                added, after = future.result()
            except BaseException:
                concurrent.futures.wait([later for later, *_ in in_flight])
                in_flight.clear()
                raise
            new_fills += added
            pages += 1
            fetched += page.count
            products.update(fills["product_id"])
            times.extend([fills["trade_time"].min(), fills["trade_time"].max()]
                         if len(fills) else [])
            if progress is not None:
                progress(page.count)

    listed = client.fill_pages(list(product_ids) if product_ids else None,
                               start_sequence_timestamp=listing.start, cursor=listing.cursor,
                               page_size=page_size)
    with contextlib.closing(fetched_ahead(listed)) as pages_ahead, \
            _committer(store) as (commit, lanes):
        try:
            for page in pages_ahead:
                fills, problems = _normalized(page)  # while the pages before commit
                committed(keep=0 if problems else lanes - 1)
                if problems:
                    raise BadRowError("exchange fills", problems)
                seen = api_time(fills["sequence_timestamp"].max()) if len(fills) else None
                listing = Listing(listing.start, page.cursor, _later(listing.seen, seen))
                previous = in_flight[-1] if in_flight else None
                keys = _keys(fills)
                meets = previous is not None and not keys.isdisjoint(previous[3])
                future = commit(_commit_page, store, client.source, fills, listing,
                                (name, listing_key), before, previous and previous[0], meets)
                in_flight.append((future, page, fills, keys))
        finally:  # the last pages; or those before a failure, whose own failure comes first
            committed()
    return SyncResult(
        fetched=fetched, new_fills=new_fills, requests=client.stats.requests - requests_before,
        products=tuple(sorted(products)), first_trade_time=min(times, default=None),
        last_trade_time=max(times, default=None), cursor_before=before, cursor_after=after,
        pages=pages, resumed=resumed)


def _normalized(page: Page) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """A page's fills frame and problems: from its Arrow columns when every fill is plain
    (:func:`~recon_assets.exchange.models.normalize_arrow`), else from its dicts."""
    if page.arrow is not None:
        fills = normalize_arrow(page.arrow)
        if fills is not None:
            return fills, []
    return normalize_fills(page.items)


def _keys(fills: pd.DataFrame) -> set[object]:
    """The trade and entry ids of a page: two pages that share one may meet on an archive
    key (:func:`_commit_page`)."""
    return {*fills["trade_id"].tolist(), *fills["entry_id"].tolist()} - {None}


def _commit_page(store: LedgerStore, source: str, fills: pd.DataFrame, listing: Listing,
                 names: tuple[str, str], before: str | None,
                 previous: Future[tuple[int, str | None]] | None = None,
                 after_previous: bool = False) -> tuple[int, str | None]:
    """One page's transaction: its fills archived with the progress record of the listing,
    or, on the last page (no cursor), with the advanced ``sequence_timestamp`` cursor and the
    record cleared. Returns the new fills and the cursor after it (``before`` until the
    listing completes).

    ``previous`` is the commit of the page before, under way on another connection: this
    page archives its fills meanwhile, then waits for it, and writes ``sync_state`` and
    commits only once it has committed (its failure rolls this page back), so pages commit
    in listing order and the two never wait on each other's locks. Pages that share a key
    (``after_previous``, :func:`_keys`) would: such a page waits before it starts.

    On PostgreSQL a page waits at most :data:`PAGE_LOCK_TIMEOUT` for a lock (a fill another
    writer is archiving): a wait for the page before happens in Python, where the server's
    deadlock detector cannot see it, so a cycle through another sync's pages (aligned
    differently) ends in a failed page that the next sync resumes at, not in a hang.
    """
    if previous is not None and after_previous:
        previous.result()
    name, listing_key = names
    after = before
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL lock_timeout = '{PAGE_LOCK_TIMEOUT}'"))
        added = archive_fills(conn, fills)
        if previous is not None:
            previous.result()
        # again: another sync may have recorded a source meanwhile
        if check_source(conn, source) is not None:
            set_sync_value(conn, SOURCE_NAME, source)
        if listing.cursor is not None:
            set_sync_value(conn, listing_key, listing.to_json())
        else:
            after = _later(_later(before, get_sync_value(conn, name)), listing.seen)
            if after is not None and after != before:
                set_sync_value(conn, name, after)
            delete_sync_value(conn, listing_key)
    return added, after


@contextlib.contextmanager
def _committer(store: LedgerStore) -> Iterator[tuple[Callable[..., Future[T]], int]]:
    """How pages are committed: ``submit(fn, *args)``, and how many pages may be under way
    at once. On PostgreSQL on threads of their own
    (:data:`COMMIT_LANES`, each with its connection), so that the next page is screened while
    the server archives this one and the one before commits (their waits release the GIL;
    :func:`_commit_page` keeps the commits in order); leaving the block waits for the commits
    under way, so nothing is left writing. On SQLite in the caller's thread: there is no
    server to wait for, and an in-memory database is one per thread."""
    if store.dialect != "postgresql":
        def now(fn: Callable[..., T], *args: object) -> Future[T]:
            future: Future[T] = Future()
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # raised where the threaded commit's would be
                future.set_exception(exc)
            return future

        yield now, 1
        return
    with ThreadPoolExecutor(max_workers=COMMIT_LANES, thread_name_prefix="commit") as pool:
        yield pool.submit, COMMIT_LANES
