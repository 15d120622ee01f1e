"""Incremental fills sync: the real SDK, the simulator, and a real SQLite/PostgreSQL ledger."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Iterator

import pandas as pd
import pytest
from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.errors import BadRowError, ConfigError, ExchangeError
from recon_assets.exchange.client import ExchangeClient, RetryPolicy
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.models import api_time, normalize_fills
from recon_assets.exchange.simulator import Simulator
from recon_assets.exchange.sync import (COMMIT_LANES, SOURCE_NAME, Listing, cursor_name,
                                        listing_name, sync_fills)
from recon_assets.ledger.fills import get_sync_value, read_fills, set_sync_value
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.reliability.conftest import snapshot
from recon_assets.reconcile.aggregate import aggregate_fills

FAST = RetryPolicy(max_attempts=10, max_seconds=30, base_delay=0.01, max_delay=0.1)
FILLS = demo_history().fills
LAST_SEQ = max(pd.Timestamp(f["sequence_timestamp"]) for f in FILLS)


def later_fills(count: int) -> list[dict]:
    """Fresh fills a day after the demo history (new ids, same money values)."""
    fills = []
    for i, fill in enumerate(FILLS[:count]):
        moment = api_time(LAST_SEQ + timedelta(days=1, seconds=i))
        fills.append({**fill, "trade_id": f"later-{i}", "entry_id": f"later-entry-{i}",
                      "order_id": f"later-order-{i}", "trade_time": moment,
                      "sequence_timestamp": moment})
    return fills


def archived(store: LedgerStore) -> pd.DataFrame:
    return read_fills(store).drop(columns="user_id")


def exact(records: list[dict]) -> pd.DataFrame:
    frame, problems = normalize_fills(records)
    assert problems == []
    return frame.drop(columns="user_id")


@pytest.fixture
def sim(tmp_path) -> Iterator[Simulator]:
    with Simulator(FILLS, tmp_path / "key.json") as simulator:
        yield simulator


@pytest.fixture
def client(sim) -> ExchangeClient:
    return ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST, requests_per_second=1000)


def test_first_sync_takes_everything_then_only_what_is_new(sim, client, store):
    seen: list[int] = []
    first = sync_fills(client, store, progress=seen.append)
    assert (first.fetched, first.new_fills, first.requests) == (len(FILLS), len(FILLS), 2)
    assert sum(seen) == len(FILLS) and first.products == ("BTC-USD", "ETH-USD", "SOL-USD")
    assert first.cursor_before is None and pd.Timestamp(first.cursor_after) == LAST_SEQ
    assert first.first_trade_time == min(pd.Timestamp(f["trade_time"]) for f in FILLS)
    pd.testing.assert_frame_equal(archived(store), exact(FILLS))

    again = sync_fills(client, store)
    assert (again.requests, again.new_fills) == (1, 0) and 1 <= again.fetched < 10
    assert again.cursor_before == again.cursor_after == first.cursor_after

    sim.add_fills(later_fills(5))
    third = sync_fills(client, store)
    assert (third.requests, third.new_fills) == (1, 5) and third.fetched < 15
    assert pd.Timestamp(third.cursor_after) == LAST_SEQ + timedelta(days=1, seconds=4)
    pd.testing.assert_frame_equal(archived(store), exact(FILLS + later_fills(5)))


PAGE = 100
PAGES = -(-len(FILLS) // PAGE)


def listing(store: LedgerStore) -> Listing | None:
    with store.connect() as conn:
        stored = get_sync_value(conn, listing_name(None))
    return None if stored is None else Listing.from_json(stored)


def test_a_sync_the_exchange_stops_resumes_at_the_last_committed_page(sim, store, tmp_path):
    client = ExchangeClient(sim.url, key_file=sim.key_file, requests_per_second=1000,
                            retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
    committed: list[int] = []
    port = sim.port
    # pages under way at once: each page is counted once the page `lanes` after it is
    # validated, and the listing has then asked for the one after that
    lanes = COMMIT_LANES if store.dialect == "postgresql" else 1
    arrived = 3 + lanes + 1

    def exchange_goes_away(count: int) -> None:
        committed.append(count)
        if len(committed) == 3:
            # page 3 is reported committed once page 3 + lanes is validated, and the page
            # after it was asked for (fetched ahead) when that one was taken: let it arrive
            deadline = time.monotonic() + 10
            while (client.stats.by_status.get("200", 0) < arrived
                   and time.monotonic() < deadline):
                time.sleep(0.005)
            sim.stop()
            client.close()  # drop the kept-alive connection, as a dying server would

    with pytest.raises(ExchangeError, match="connection error"):
        sync_fills(client, store, progress=exchange_goes_away, page_size=PAGE)
    # what arrived before the exchange went away is committed, whole
    assert committed == [PAGE] * arrived and len(archived(store)) == arrived * PAGE
    assert listing(store).cursor is not None
    with store.connect() as conn:
        assert get_sync_value(conn, cursor_name(None)) is None  # the listing is not complete

    with Simulator(FILLS, sim.key_file, port=port) as back:  # the same exchange, back again
        resumed = sync_fills(ExchangeClient(back.url, key_file=back.key_file, retry=FAST,
                                            requests_per_second=1000), store, page_size=PAGE)
        assert back.stats.requests == PAGES - arrived  # those are not fetched again
    assert resumed.resumed and resumed.new_fills == len(FILLS) - arrived * PAGE
    assert pd.Timestamp(resumed.cursor_after) == LAST_SEQ and listing(store) is None
    pd.testing.assert_frame_equal(archived(store), exact(FILLS))


def test_a_bad_fill_on_page_k_keeps_the_pages_before_it(tmp_path, store):
    ordered = sorted(FILLS, key=lambda f: (f["sequence_timestamp"], f["trade_id"]))
    bad = {**ordered[2 * PAGE + 5], "size": "-1"}
    fills = ordered[:2 * PAGE + 5] + [bad] + ordered[2 * PAGE + 6:]
    with Simulator(fills, tmp_path / "key.json") as s:
        client = ExchangeClient(s.url, key_file=s.key_file, retry=FAST, requests_per_second=1000)
        for attempt in (1, 2):
            with pytest.raises(BadRowError, match=f"{bad['trade_id']}: size"):
                sync_fills(client, store, page_size=PAGE)
            assert len(archived(store)) == 2 * PAGE  # never the bad fill, nor its page
        # each sync asked for one page past the bad one (fetched ahead, then dropped); the
        # second asked for nothing before the bad page again
        assert s.stats.requests == (3 + 1) + (1 + 1)
    assert bad["trade_id"] not in set(archived(store)["trade_id"])


@pytest.mark.parametrize("record", ["not json", '{"start": "soon", "cursor": "c", "seen": null}',
                                    '{"cursor": "c"}'])
def test_an_unreadable_progress_record_restarts_the_listing(client, store, caplog, record):
    with store.begin() as conn:
        set_sync_value(conn, listing_name(None), record)
    caplog.set_level(logging.WARNING, logger="recon_assets.exchange.sync")
    result = sync_fills(client, store, page_size=PAGE)
    assert "unreadable progress record" in caplog.text
    assert not result.resumed and result.requests == PAGES and listing(store) is None
    pd.testing.assert_frame_equal(archived(store), exact(FILLS))


def test_a_stored_cursor_the_server_rejects_restarts_the_listing(client, store, caplog):
    with store.begin() as conn:
        set_sync_value(conn, listing_name(None), Listing(None, "expired-cursor").to_json())
    caplog.set_level(logging.WARNING, logger="recon_assets.exchange.client")
    result = sync_fills(client, store, page_size=PAGE)
    assert "rejected the stored cursor" in caplog.text
    assert result.resumed and result.requests == 1 + PAGES
    assert pd.Timestamp(result.cursor_after) == LAST_SEQ and listing(store) is None
    pd.testing.assert_frame_equal(archived(store), exact(FILLS))


def test_bad_fills_are_named_and_nothing_is_archived(sim, client, store):
    first = sync_fills(client, store)
    good, bad_size, bad_product = later_fills(3)
    sim.add_fills([good, {**bad_size, "size": "-1"}, {**bad_product, "product_id": "BTCUSD"}])
    with pytest.raises(BadRowError) as info:
        sync_fills(client, store)
    fields = {(trade_id, field) for trade_id, field, _ in info.value.problems}
    assert fields == {("later-1", "size"), ("later-2", "product_id")}
    assert "later-1: size" in str(info.value)
    assert len(archived(store)) == len(FILLS)
    with store.connect() as conn:
        assert get_sync_value(conn, cursor_name(None)) == first.cursor_after


def test_a_product_sync_keeps_its_own_cursor(client, store):
    btc = sync_fills(client, store, product_ids=["BTC-USD"])
    assert btc.products == ("BTC-USD",)
    assert btc.new_fills == sum(f["product_id"] == "BTC-USD" for f in FILLS)
    everything = sync_fills(client, store)
    assert everything.cursor_before is None
    assert everything.new_fills == len(FILLS) - btc.new_fills
    assert cursor_name(["SOL-USD", "BTC-USD"]) == cursor_name(["BTC-USD", "SOL-USD", "BTC-USD"])


def test_sync_through_faults_and_a_low_rate_limit_is_complete(store, tmp_path):
    with Simulator(FILLS, tmp_path / "key.json", fail_rate=0.3, rate_limit=3, seed=11) as s:
        client = ExchangeClient(s.url, key_file=s.key_file, retry=FAST, seed=3)
        result = sync_fills(client, store)
    assert result.new_fills == len(FILLS)
    pd.testing.assert_frame_equal(archived(store), exact(FILLS))


def test_a_sync_from_another_exchange_into_the_archive_is_refused(
        sim, client, store, tmp_path, monkeypatch, capfd):
    sync_fills(client, store)
    with store.connect() as conn:
        assert get_sync_value(conn, SOURCE_NAME) == client.source
    before = snapshot(store.url, ["exchange_fills", "sync_state"])
    with Simulator(FILLS[:5], tmp_path / "other-key.json") as other:
        other_client = ExchangeClient(other.url, key_file=other.key_file, retry=FAST)
        with pytest.raises(ConfigError) as info:
            sync_fills(other_client, store)
        assert client.source in str(info.value) and other_client.source in str(info.value)
        monkeypatch.setenv("RECON_EXCHANGE_URL", other.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(other.key_file))
        monkeypatch.setenv("DATABASE_URL", store.url)
        assert main(["sync", "-q"]) == 2
        assert other.stats.requests == 0  # refused before anything was fetched
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and other_client.source in lines[0], err
    assert "PRIVATE KEY" not in err
    assert snapshot(store.url, ["exchange_fills", "sync_state"]) == before


def test_an_archive_without_a_recorded_source_adopts_the_current_one(
        client, store, caplog):
    sync_fills(client, store, product_ids=["BTC-USD"])
    with store.begin() as conn:  # as archived before this release: no source recorded
        conn.execute(text("DELETE FROM sync_state WHERE name = :n"), {"n": SOURCE_NAME})
    caplog.set_level(logging.WARNING, logger="recon_assets.exchange.sync")
    sync_fills(client, store)
    assert f"adopting {client.source}" in caplog.text
    with store.connect() as conn:
        assert get_sync_value(conn, SOURCE_NAME) == client.source
    assert len(archived(store)) == len(FILLS)


@pytest.mark.filterwarnings("error")
def test_nanosecond_times_sync_without_a_warning(sim, client, store):
    """Coinbase may send ``2023-01-18T01:37:38.091377090Z``: the archive keeps microseconds
    (what both databases store), and nothing on the way warns about the dropped digits."""
    nano = [{**fill, "trade_time": fill["trade_time"].replace("Z", "090Z"),
             "sequence_timestamp": fill["sequence_timestamp"].replace("Z", "001Z")}
            for fill in later_fills(3)]
    sim.add_fills(nano)
    result = sync_fills(client, store)
    assert result.new_fills == len(FILLS) + 3
    again = sync_fills(client, store)
    assert again.new_fills == 0
    times = archived(store).set_index("trade_id")["trade_time"]
    assert times["later-1"] == pd.Timestamp(later_fills(3)[1]["trade_time"])
    aggregate_fills(read_fills(store))
