"""A long first sync SIGKILLed after some pages resumes at the last committed page: the pages
before are not fetched again, and the archive ends exactly as after an uninterrupted sync. On
real SQLite and PostgreSQL, with the real SDK against the simulator over HTTP.

Run as ``python -m recon_assets_tests.reliability.test_sync_resume LEDGER_URL SIM_URL KEY``,
this module is the doomed process: it syncs page by page, printing ``PAGE n`` once page n is
committed, until the test kills it.
"""

from __future__ import annotations

import signal
import sys

import pandas as pd

from recon_assets.exchange.client import ExchangeClient
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.models import normalize_fills
from recon_assets.exchange.simulator import Simulator
from recon_assets.exchange.sync import Listing, cursor_name, listing_name, sync_fills
from recon_assets.ledger.fills import get_sync_value, read_fills
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.reliability.conftest import Running, child_env

FILLS = demo_history().fills
PAGE = 50
PAGES = -(-len(FILLS) // PAGE)


def _sync_until_killed(ledger_url: str, exchange_url: str, key_file: str) -> None:
    client = ExchangeClient(exchange_url, key_file=key_file, requests_per_second=1000)
    pages = [0]

    def committed(count: int) -> None:
        pages[0] += 1
        print(f"PAGE {pages[0]}", flush=True)

    sync_fills(client, LedgerStore(ledger_url), progress=committed, page_size=PAGE)
    print("DONE", flush=True)


def test_a_sync_killed_after_some_pages_resumes_without_refetching_them(ledger_url, tmp_path):
    store = LedgerStore(ledger_url)
    store.ensure_schema()
    # Latency keeps the doomed sync mid-listing when the kill arrives.
    with Simulator(FILLS, tmp_path / "key.json", latency_ms=40) as sim:
        doomed = Running([sys.executable, "-m", __name__, ledger_url, sim.url,
                          str(sim.key_file)], child_env())
        doomed.wait_for("PAGE 4", "stdout")
        doomed.proc.send_signal(signal.SIGKILL)
        assert doomed.finish()[0] == -signal.SIGKILL
        kept = len(read_fills(store))
        assert kept % PAGE == 0 and 4 * PAGE <= kept < len(FILLS)  # whole pages only
        with store.connect() as conn:
            assert Listing.from_json(get_sync_value(conn, listing_name(None))).cursor
            assert get_sync_value(conn, cursor_name(None)) is None
        client = ExchangeClient(sim.url, key_file=sim.key_file, requests_per_second=1000)
        resumed = sync_fills(client, store, page_size=PAGE)
    # Counted by the client: the killed process's last request may still be in flight at the
    # simulator. Only the pages after the committed ones are asked for.
    assert resumed.resumed and resumed.requests == PAGES - kept // PAGE
    assert resumed.new_fills == len(FILLS) - kept
    expected, problems = normalize_fills(FILLS)
    assert problems == []
    # What an uninterrupted sync archives (exchange/test_sync_fills.py): every fill, once.
    pd.testing.assert_frame_equal(read_fills(store).drop(columns="user_id"),
                                  expected.drop(columns="user_id"))
    assert pd.Timestamp(resumed.cursor_after) == expected["sequence_timestamp"].max()
    with store.connect() as conn:
        assert get_sync_value(conn, listing_name(None)) is None
    store.dispose()


if __name__ == "__main__":
    _sync_until_killed(*sys.argv[1:4])
