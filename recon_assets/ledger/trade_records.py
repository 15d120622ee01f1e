"""``trade_records``: the bot's ledger table as an observable source asset.

Dagster does not write ``trade_records`` (the bot does), so it is observed, not materialized:
its data version is the ledger fingerprint (:mod:`recon_assets.ledger.fingerprint`), which
changes exactly when a value FIFO reads changes. ``fifo_allocations`` depends on it, so the UI
shows the current FIFO version stale exactly when the ledger changed since it was computed.
The ``ledger_change_sensor`` logs the same observation every tick.
"""

from __future__ import annotations

import dagster as dg

from recon_assets.ledger.resources import LedgerResource

TRADE_RECORDS = dg.AssetKey("trade_records")


@dg.observable_source_asset(
    group_name="ledger", kinds={"sql"},
    description="The bot's trade_records table; observed, with the ledger fingerprint as its "
                "data version (any value FIFO reads changed -> a new data version).")
def trade_records(ledger: LedgerResource) -> dg.DataVersion:
    return dg.DataVersion(str(ledger.get_store().fingerprint()))


def observation(fingerprint: str) -> dg.AssetObservation:
    """The observation the sensor logs: the same data version the source asset reports."""
    return dg.AssetObservation(asset_key=TRADE_RECORDS,
                               tags={"dagster/data_version": fingerprint})
