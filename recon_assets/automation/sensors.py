"""``ledger_change_sensor``: a new FIFO version whenever the ledger changes.

The cursor holds the last fingerprint acted on, so each change requests exactly one recompute
(the run key is the fingerprint too, so a retried tick cannot start a second run).
"""


import dagster as dg

from recon_assets.automation.jobs import fifo_job
from recon_assets.ledger import versions
from recon_assets.ledger.resources import LedgerResource


@dg.sensor(job=fifo_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts a FIFO recompute when trade_records changed since the latest "
                       "version (any value FIFO reads: an order added, removed or "
                       "corrected in place).")
def ledger_change_sensor(context: dg.SensorEvaluationContext, ledger: LedgerResource):
    store = ledger.get_store()
    current = str(store.fingerprint())
    if current == context.cursor:
        return dg.SkipReason(f"ledger unchanged since the last request ({current})")
    with store.connect() as conn:
        latest = versions.latest_version(conn)
    if latest is not None and latest.ledger_fingerprint == current:
        context.update_cursor(current)
        return dg.SkipReason(f"version {latest.version} already reflects the ledger")
    if latest is None and current.startswith("0:"):
        return dg.SkipReason("the ledger is empty")
    context.update_cursor(current)
    return dg.RunRequest(run_key=f"ledger-{current}", tags={"recon-assets/trigger": "ledger"})
