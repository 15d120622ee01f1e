"""Incremental fills sync: the real SDK, the simulator, and a real SQLite/PostgreSQL ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import pandas as pd
import pytest

from recon_assets.errors import BadRowError, ExchangeError
from recon_assets.exchange.client import ExchangeClient, RetryPolicy
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.models import api_time, normalize_fills
from recon_assets.exchange.simulator import Simulator
from recon_assets.exchange.sync import cursor_name, sync_fills
from recon_assets.ledger.fills import get_sync_value, read_fills
from recon_assets.ledger.store import LedgerStore
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


def test_a_failure_mid_listing_commits_nothing(sim, store, tmp_path):
    client = ExchangeClient(sim.url, key_file=sim.key_file, requests_per_second=1000,
                            retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))

    def exchange_goes_away(_page: int) -> None:
        sim.stop()
        client.close()  # drop the kept-alive connection, as a dying server would

    with pytest.raises(ExchangeError, match="connection error"):
        sync_fills(client, store, progress=exchange_goes_away)
    assert archived(store).empty
    with store.connect() as conn:
        assert get_sync_value(conn, cursor_name(None)) is None


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
