"""``ledger_change_sensor``: a new FIFO version whenever the ledger changes.

Every tick logs an observation of ``trade_records`` with the ledger fingerprint as its data
version, so the UI's staleness of ``fifo_allocations`` follows the ledger without anyone
observing by hand. A recompute is requested when :func:`plan_new_version` says one is needed;
the cursor holds the last fingerprint acted on and the run key is the fingerprint too, so
each change requests exactly one recompute (a retried tick cannot start a second run).
"""

import dagster as dg

from recon_assets.automation.jobs import fifo_job
from recon_assets.fifo.service import plan_new_version
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.trade_records import observation


@dg.sensor(job=fifo_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Observes trade_records (data version = ledger fingerprint) and starts "
                       "a FIFO recompute when it changed since the latest version (an order "
                       "added, removed or corrected in place).")
def ledger_change_sensor(context: dg.SensorEvaluationContext,
                         ledger: LedgerResource) -> dg.SensorResult:
    store = ledger.get_store()
    current = str(store.fingerprint())
    observed = [observation(current)]
    if current == context.cursor:
        return dg.SensorResult(skip_reason=f"ledger unchanged since the last request ({current})",
                               asset_events=observed)
    plan = plan_new_version(store)
    if plan.unchanged_since is not None:
        context.update_cursor(current)
        return dg.SensorResult(
            skip_reason=f"version {plan.unchanged_since.version} already reflects the ledger",
            asset_events=observed)
    if plan.version == 1 and current.startswith("0:"):
        return dg.SensorResult(skip_reason="the ledger is empty", asset_events=observed)
    context.update_cursor(current)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"ledger-{current}",
                                    tags={"recon-assets/trigger": "ledger"})],
        asset_events=observed)
