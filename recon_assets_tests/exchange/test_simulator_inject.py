"""``--inject``: the fills Coinbase really sends, served through the real SDK over HTTP."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from recon_assets.exchange.client import ExchangeClient, RetryPolicy
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.models import normalize_fills
from recon_assets.exchange.simulator import Simulator
from recon_assets.exchange.simulator.inject import EVERY, INJECTIONS
from recon_assets.exchange.sync import sync_fills
from recon_assets.ledger.fills import read_fills
from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets_tests.exchange import all_fills, sdk_client

FILLS = demo_history().fills[:200]
PICKED = len(FILLS) // EVERY


def _served(tmp_path: Path, kinds: tuple[str, ...], seed: int) -> tuple[list, list]:
    """The fills of a first complete listing, then those of a second one."""
    with Simulator(FILLS, tmp_path / "key.json", inject=kinds, seed=seed) as simulator:
        client = sdk_client(simulator.port, tmp_path / "key.json")
        return all_fills(client, limit=70), all_fills(client, limit=70)


def test_each_injection_through_the_sdk(tmp_path: Path) -> None:
    first, second = _served(tmp_path, INJECTIONS, seed=7)
    originals = {f["entry_id"]: f for f in FILLS}
    reversals = [f for f in first if f["trade_type"] == "REVERSAL"]
    assert len(reversals) == PICKED
    for reversal in reversals:
        reversed_fill = originals[reversal["entry_id"].removesuffix("-reversal")]
        assert reversal["trade_id"] == reversed_fill["trade_id"]
        assert reversal["sequence_timestamp"] > reversed_fill["sequence_timestamp"]
    perpetuals = [f for f in first if f["product_id"].endswith("-PERP-INTX")]
    assert len(perpetuals) == PICKED
    nanos = [f for f in first if len(f["trade_time"].rsplit(".", 1)[-1]) == len("091377090Z")]
    assert len(nanos) == PICKED and all(not f["trade_time"].endswith("000Z") for f in nanos)
    late = [f for f in second if f["trade_id"].endswith("-late")]
    assert len(late) == PICKED and not [f for f in first if f["trade_id"].endswith("-late")]
    last_first = max(f["sequence_timestamp"] for f in first)
    for fill in late:
        assert fill["sequence_timestamp"] > last_first
        gap = (datetime.fromisoformat(fill["sequence_timestamp"])
               - datetime.fromisoformat(fill["trade_time"]))
        assert gap.total_seconds() > 3600
    assert len(first) == len(FILLS) + 2 * PICKED and len(second) == len(first) + PICKED


def test_injection_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    assert _served(tmp_path, INJECTIONS, seed=3) == _served(tmp_path, INJECTIONS, seed=3)
    assert _served(tmp_path, INJECTIONS, seed=3) != _served(tmp_path, INJECTIONS, seed=4)


def test_unknown_injections_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown injection 'typos'"):
        Simulator(FILLS, tmp_path / "key.json", inject=["late", "typos"])


def test_late_sequenced_fills_are_found_by_the_next_sync(tmp_path: Path, store) -> None:
    with Simulator(FILLS, tmp_path / "key.json", inject=["late"], seed=1) as simulator:
        client = ExchangeClient(simulator.url, key_file=simulator.key_file,
                                requests_per_second=1000,
                                retry=RetryPolicy(base_delay=0.01, max_delay=0.1))
        first = sync_fills(client, store)
        second = sync_fills(client, store)
    assert (first.new_fills, second.new_fills) == (len(FILLS), PICKED)
    archived = read_fills(store)
    assert archived["trade_id"].str.endswith("-late").sum() == PICKED


@pytest.mark.filterwarnings("error")
def test_injected_entries_sync_and_never_change_an_order(tmp_path: Path, store) -> None:
    """A sync through ``--inject reversals,perpetuals,nanoseconds`` archives everything, and
    every spot order aggregates exactly as from the uninjected fills: reversals are kept apart
    for review, perpetuals archived but no spot order, nanoseconds no warning."""
    kinds = ["reversals", "perpetuals", "nanoseconds"]
    with Simulator(FILLS, tmp_path / "key.json", inject=kinds, seed=2) as simulator:
        client = ExchangeClient(simulator.url, key_file=simulator.key_file,
                                requests_per_second=1000,
                                retry=RetryPolicy(base_delay=0.01, max_delay=0.1))
        sync_fills(client, store)
    archived = read_fills(store)
    with store.connect() as conn:
        entries = conn.execute(text("SELECT count(*) FROM exchange_fill_entries")).scalar()
    assert entries == PICKED  # one REVERSAL per picked fill, none counted as a fill
    assert archived["product_id"].str.endswith("-PERP-INTX").sum() > 0
    columns = ["order_id", "symbol", "side", "price", "size", "total_fees_usd"]
    got = aggregate_fills(archived)[columns].sort_values("order_id", ignore_index=True)
    want = aggregate_fills(normalize_fills(FILLS)[0])[columns].sort_values(
        "order_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, want)
