"""``trade_records``: the bot's ledger table, as an observable source asset.

Its data version is the ledger fingerprint (every value FIFO reads, hashed in the database),
so ``fifo_allocations`` shows as stale in the UI exactly when the ledger changed since the
version it was computed from. The ledger sensor records an observation on every tick; the
UI's "Observe sources" records one on demand.
"""

import dagster as dg

from recon_assets.ledger.resources import LedgerResource


@dg.observable_source_asset(group_name="ledger", kinds={"sql"},
                            description="The bot's trade_records table (not written by "
                                        "recon-assets except by an approved backfill); its data "
                                        "version is the ledger fingerprint.")
def trade_records(ledger: LedgerResource) -> dg.DataVersion:
    return dg.DataVersion(str(ledger.get_store().fingerprint()))
