"""The sync pipeline: the listing runs one page ahead of the validation (``fetched_ahead``),
the validation ahead of the commits (on PostgreSQL two pages archived at once, committing in
listing order), and what that keeps."""

from __future__ import annotations

import threading
from contextlib import closing
from decimal import Decimal
from typing import Iterator

import pytest

from recon_assets.errors import BadRowError, ExchangeError, LedgerError
from recon_assets.exchange import sync
from recon_assets.exchange.client import ExchangeClient
from recon_assets.exchange.models import normalize_fills
from recon_assets.exchange.simulator import Simulator
from recon_assets.exchange.sync import Listing, fetched_ahead, listing_name, sync_fills
from recon_assets.ledger.fills import archive_fills, get_sync_value, read_fills
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.exchange.test_sync_fills import FAST, later_fills


def test_items_come_in_order_and_an_error_after_them():
    def listing() -> Iterator[int]:
        yield 1
        yield 2
        raise ExchangeError("the exchange went away")

    got = []
    with pytest.raises(ExchangeError, match="went away"):
        for item in fetched_ahead(listing()):
            got.append(item)
    assert got == [1, 2]


def test_the_next_item_is_drawn_while_the_caller_holds_the_current_one():
    asked_for_second = threading.Event()

    def listing() -> Iterator[int]:
        yield 1
        asked_for_second.set()
        yield 2

    with closing(fetched_ahead(listing())) as ahead:
        assert next(ahead) == 1
        assert asked_for_second.wait(10)  # while item 1 is still being worked on
        assert next(ahead) == 2


def test_closing_stops_at_the_item_drawn_ahead_and_closes_the_listing():
    drawn: list[int] = []
    closed_on: list[str] = []

    def listing() -> Iterator[int]:
        try:
            for i in range(10):
                drawn.append(i)
                yield i
        finally:
            closed_on.append(threading.current_thread().name)

    with closing(fetched_ahead(listing())) as ahead:
        assert next(ahead) == 0
    # item 1 was drawn ahead and dropped; nothing after it; the listing is closed, by the
    # thread that drew it, before closing returned
    assert drawn == [0, 1] and closed_on == ["fetched-ahead"]


def test_a_bad_page_drops_the_page_fetched_ahead(tmp_path, store):
    """Page 3 is refused; page 4 was already fetched when it was: nothing of 3 or 4 is kept,
    and the next sync starts at page 3."""
    fills = later_fills(40)
    fills[25] = {**fills[25], "size": "-1"}
    with Simulator(fills, tmp_path / "key.json") as sim:
        client = ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST,
                                requests_per_second=1000)
        with pytest.raises(BadRowError, match=f"{fills[25]['trade_id']}: size"):
            sync_fills(client, store, page_size=10)
        assert sim.stats.requests == 4
    kept = read_fills(store)
    assert sorted(kept["trade_id"]) == sorted(f["trade_id"] for f in fills[:20])


def test_exact_decimals_keep_every_digit_and_their_scale(tmp_path, store):
    """What the page said is what the archive holds: ``0.10`` stays ``0.10`` (NUMERIC keeps
    the scale on PostgreSQL, text on SQLite), 30 places and 15 integer digits survive."""
    values = [("0.10", "1.000", "0"), ("999999999999999.99", "0." + "0" * 29 + "1", "0.50"),
              ("64000.01", "0.00012345", "0.0790123456789")]
    fills = [{**fill, "price": price, "size": size, "commission": commission}
             for fill, (price, size, commission) in zip(later_fills(len(values)), values)]
    with Simulator(fills, tmp_path / "key.json") as sim:
        client = ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST,
                                requests_per_second=1000)
        assert sync_fills(client, store, page_size=2).new_fills == len(fills)
    kept = read_fills(store).set_index("trade_id")
    for fill, want in zip(fills, values):
        got = kept.loc[fill["trade_id"], ["price", "size", "commission"]].tolist()
        assert all(type(v) is Decimal for v in got)
        assert [v.as_tuple() for v in got] == [Decimal(w).as_tuple() for w in want]


def test_a_failed_commit_is_raised_before_the_bad_page_after_it(tmp_path, store, monkeypatch):
    """Page 3 is validated while page 2 commits; page 2's commit fails and page 3 has a bad
    fill: the failure that came first in page order is the one raised, page 1 stays archived
    and the progress record still points at page 2."""
    fills = later_fills(30)
    fills[25] = {**fills[25], "size": "-1"}
    calls: list[int] = []

    def archive_or_fail(conn, frame):
        calls.append(len(frame))
        if len(calls) == 2:
            raise LedgerError("ledger: the disk is full")
        return archive_fills(conn, frame)

    monkeypatch.setattr(sync, "archive_fills", archive_or_fail)
    with Simulator(fills, tmp_path / "key.json") as sim:
        client = ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST,
                                requests_per_second=1000)
        with pytest.raises(LedgerError, match="disk is full"):
            sync_fills(client, store, page_size=10)
    assert calls == [10, 10]
    assert sorted(read_fills(store)["trade_id"]) == sorted(f["trade_id"] for f in fills[:10])
    with store.connect() as conn:
        assert Listing.from_json(get_sync_value(conn, listing_name(None))).cursor is not None


def test_on_postgresql_the_next_page_is_validated_while_a_page_commits(tmp_path, pg_url,
                                                                        monkeypatch):
    store = LedgerStore(pg_url)
    store.ensure_schema()
    second_validated = threading.Event()
    overlapped: list[bool] = []

    def validate(page):
        if page.items and page.items[0]["trade_id"] == fills[10]["trade_id"]:
            second_validated.set()
        return normalized(page)

    def archive(conn, frame):
        if not overlapped:  # page 1: its commit waits until page 2 is being validated
            overlapped.append(second_validated.wait(10))
        return archive_fills(conn, frame)

    fills = later_fills(20)
    normalized = sync._normalized
    monkeypatch.setattr(sync, "_normalized", validate)
    monkeypatch.setattr(sync, "archive_fills", archive)
    with Simulator(fills, tmp_path / "key.json") as sim:
        client = ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST,
                                requests_per_second=1000)
        assert sync_fills(client, store, page_size=10).new_fills == 20
    assert overlapped == [True]
    store.dispose()


def test_on_postgresql_a_page_archived_beside_a_failing_commit_is_rolled_back(
        tmp_path, pg_url, monkeypatch):
    """Page 3 is archived on its own connection while page 2 commits; page 2's commit fails:
    page 3, though archived, is never committed (pages commit in listing order), the failure
    raised is page 2's, and the next sync resumes at page 2 and archives everything once."""
    store = LedgerStore(pg_url)
    store.ensure_schema()
    fills = later_fills(40)
    third_archived = threading.Event()
    failed: list[str] = []

    def archive(conn, frame):
        first = frame["trade_id"].iloc[0]
        if first == fills[10]["trade_id"] and not failed:  # page 2, the first time
            assert third_archived.wait(10), "page 3 was not archived beside page 2"
            failed.append(first)
            raise LedgerError("ledger: the disk is full")
        added = archive_fills(conn, frame)
        if first == fills[20]["trade_id"]:
            third_archived.set()
        return added

    monkeypatch.setattr(sync, "archive_fills", archive)
    with Simulator(fills, tmp_path / "key.json") as sim:
        client = ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST,
                                requests_per_second=1000)
        with pytest.raises(LedgerError, match="disk is full"):
            sync_fills(client, store, page_size=10)
        assert sorted(read_fills(store)["trade_id"]) == sorted(f["trade_id"] for f in fills[:10])
        resumed = sync_fills(client, store, page_size=10)
    assert resumed.resumed and resumed.new_fills == 30
    assert sorted(read_fills(store)["trade_id"]) == sorted(f["trade_id"] for f in fills)
    store.dispose()


def test_on_postgresql_pages_that_share_a_trade_are_archived_one_after_the_other(
        tmp_path, pg_url):
    """The same fill at the end of page 1 and the start of page 2 (a server that repeats
    it): the second page waits for the first to commit, then finds it archived, so the sync
    neither stalls on the two pages' locks nor keeps a conflict."""
    store = LedgerStore(pg_url)
    store.ensure_schema()
    fills = later_fills(30)
    repeated = [*fills[:10], fills[9], *fills[10:]]
    with Simulator(repeated, tmp_path / "key.json") as sim:
        client = ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST,
                                requests_per_second=1000)
        result = sync_fills(client, store, page_size=10)
    assert (result.fetched, result.new_fills) == (31, 30)
    archived = read_fills(store)
    assert not archived["conflicting"].any()
    assert sorted(archived["trade_id"]) == sorted(f["trade_id"] for f in fills)
    store.dispose()


def test_on_postgresql_a_page_waits_a_bounded_time_for_another_writers_lock(
        tmp_path, pg_url, monkeypatch):
    """Another writer holds a fill of page 2 uncommitted (as a sync whose pages wait on each
    other might, for ever): page 2 gives up after the lock timeout instead of hanging, page 1
    stays archived, and once the other writer is gone the next sync resumes at page 2."""
    store = LedgerStore(pg_url)
    store.ensure_schema()
    fills = later_fills(30)
    monkeypatch.setattr(sync, "PAGE_LOCK_TIMEOUT", "1s")
    other = store.engine.connect()
    held = other.begin()
    archive_fills(other, normalize_fills([fills[12]])[0])  # uncommitted
    try:
        with Simulator(fills, tmp_path / "key.json") as sim:
            client = ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST,
                                    requests_per_second=1000)
            with pytest.raises(LedgerError, match="lock timeout"):
                sync_fills(client, store, page_size=10)
            assert sorted(read_fills(store)["trade_id"]) == sorted(
                f["trade_id"] for f in fills[:10])
            held.rollback()
            resumed = sync_fills(client, store, page_size=10)
    finally:
        other.close()
    assert resumed.resumed and resumed.new_fills == 20
    store.dispose()
