"""``ledger_change_sensor``: observe ``trade_records`` and start a new FIFO version on change.

Every tick records an observation of the ``trade_records`` source asset whose data version is
the ledger fingerprint (so the UI shows ``fifo_allocations`` stale exactly when the ledger
changed). When no version of the full ledger reflects that fingerprint, it adds the next
version's partition and requests a ``fifo_job`` run of it; the run key is the fingerprint, so a
retried tick cannot start a second run for the same change.
"""

import dagster as dg

from recon_assets.automation.jobs import fifo_job
from recon_assets.fifo.partitions import FIFO_VERSIONS
from recon_assets.fifo.service import plan_new_version
from recon_assets.ledger.resources import LedgerResource


@dg.sensor(job=fifo_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Observes trade_records (data version: the ledger fingerprint) and "
                       "starts a new FIFO version when the ledger changed since the latest "
                       "version (any value FIFO reads: an order added, removed or corrected in "
                       "place).")
def ledger_change_sensor(context: dg.SensorEvaluationContext, ledger: LedgerResource):
    store = ledger.get_store()
    current = str(store.fingerprint())
    observed = [dg.AssetObservation(asset_key="trade_records",
                                    tags={"dagster/data_version": current})]
    if current == context.cursor:
        return dg.SensorResult(asset_events=observed,
                               skip_reason=f"ledger unchanged since the last tick ({current})")
    if current.startswith("0:"):
        return dg.SensorResult(asset_events=observed, skip_reason="the ledger is empty")
    plan = plan_new_version(store)
    if plan.unchanged_since is not None:
        return dg.SensorResult(
            asset_events=observed, cursor=current,
            skip_reason=f"version {plan.unchanged_since.version} already reflects the ledger")
    key = str(plan.version)
    return dg.SensorResult(
        asset_events=observed, cursor=current,
        dynamic_partitions_requests=[FIFO_VERSIONS.build_add_request([key])],
        run_requests=[dg.RunRequest(run_key=f"ledger-{current}", partition_key=key,
                                    tags={"recon-assets/trigger": "ledger"})])
