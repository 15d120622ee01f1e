"""Fills as Coinbase really sends them, served by the simulator through the real SDK into the
``exchange_fills`` asset on real SQLite and PostgreSQL: derivatives, non-FILL entries,
conflicting reports of one trade."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from recon_assets.exchange.assets import exchange_fills
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.resources import ExchangeResource
from recon_assets.exchange.simulator import Simulator
from recon_assets.ledger.fills import read_fills
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets.reconcile.tiers import full_audit

GOOD = demo_history().fills[:30]
#: Times after every demo fill: a fill the next incremental sync fetches.
LATER = {"trade_time": "2030-01-01T00:00:00.000000Z",
         "sequence_timestamp": "2030-01-01T00:00:00.000000Z"}


def like(i: int, **change: object) -> dict:
    """A fill shaped like the ``i``-th demo fill, under its own ids unless ``change`` says."""
    return {**GOOD[i], "trade_id": f"x-{i}", "entry_id": f"x-entry-{i}",
            "order_id": f"x-order-{i}", **change}


@pytest.fixture
def sync(ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Materialize ``exchange_fills`` from a simulator serving the given fills pages."""
    monkeypatch.setenv("DATABASE_URL", ledger_url)

    def run(*fill_sets: list[dict]) -> dg.ExecuteInProcessResult:
        result = None
        for fills in fill_sets:
            with Simulator(fills, tmp_path / "key.json") as simulator:
                monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
                monkeypatch.setenv("COINBASE_KEY_FILE", str(simulator.key_file))
                result = dg.materialize([exchange_fills], resources={
                    "exchange": ExchangeResource(requests_per_second=1000),
                    "ledger": LedgerResource(database_url=ledger_url)})
        return result

    return run


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    event = result.get_asset_materialization_events()[0]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def archive(ledger_url: str) -> pd.DataFrame:
    store = LedgerStore(ledger_url)
    try:
        return read_fills(store)
    finally:
        store.dispose()


def test_derivative_fills_are_archived_and_left_out_of_reconciliation(sync, ledger_url):
    perp = like(0, product_id="BTC-PERP-INTX")
    future = like(1, product_id="BIT-31JAN25-CDE")
    result = sync(GOOD + [perp, future])
    assert result.success
    meta = metadata(result)
    assert meta["non_spot_fills"] == 2
    assert meta["non_spot_products"] == "BIT-31JAN25-CDE, BTC-PERP-INTX"
    fills = archive(ledger_url)
    assert {"x-0", "x-1"} <= set(fills["trade_id"])
    orders = aggregate_fills(fills)
    assert not {"x-order-0", "x-order-1"} & set(orders["order_id"])
    assert set(orders["symbol"]) <= {"BTC-USD", "ETH-USD", "SOL-USD"}
    audit = full_audit(orders, orders, fills)
    assert audit.is_clean
    # One derivative fill no longer wedges the sync: a later one still moves.
    later = sync(GOOD + [perp, future, like(2, product_id="ETH-PERP-INTX", **LATER)])
    assert metadata(later)["new_fills"] == 1 and metadata(later)["non_spot_fills"] == 3
