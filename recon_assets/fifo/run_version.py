"""Which FIFO version the assets and checks downstream of ``fifo_allocations`` work on.

"The latest version" is not good enough inside ``fifo_job``: a concurrent recompute (another
CLI run, the ledger sensor) may write a newer version between this run's ``fifo_allocations``
step and its checks, which would then validate, queue and report the other run's version
while this one stays unvalidated. So a run that materialized ``fifo_allocations`` works on
the version that step wrote; otherwise on the configured version, or the latest.
"""

from __future__ import annotations

import dagster as dg

FIFO_ASSET = dg.AssetKey("fifo_allocations")


def version_of_run(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
                   requested: int | None) -> int | None:
    """``requested`` if given, else the version this run's ``fifo_allocations`` wrote, else
    ``None`` (meaning the latest)."""
    if requested is not None:
        return requested
    entries = context.instance.all_logs(context.run.run_id,
                                        of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    for entry in reversed(entries):
        materialization = entry.asset_materialization
        if materialization is not None and materialization.asset_key == FIFO_ASSET:
            value = materialization.metadata.get("allocation_version")
            if value is not None:
                return int(getattr(value, "value", value))
    return None
