"""``fifo_version_announcement_sensor``: tell the alert channels about each new FIFO version.

After a backfill and a recompute, the first question a trader asks is how realized PnL moved.
The ``fifo_version_diff`` asset only computes the answer; this sensor announces it, once per
version, from the materialization's metadata (so an asset never sends anything, and a re-run
of an old version's diff never announces again). Its JSON cursor::

    {"after": <storage id of the last materialization handled>,
     "version": <highest version announced>, "owed": {"<alert key>": ["<channel>", ...]}}
"""

from __future__ import annotations

import json
from typing import Any, Callable

import dagster as dg

from recon_assets.alerts.messages import Alert
from recon_assets.alerts.senders import AlertSender
from recon_assets.alerts.sensors import Delivery

DIFF_ASSET = dg.AssetKey("fifo_version_diff")
_FETCH_LIMIT = 50


def announcement(metadata: dict[str, Any], run_id: str) -> Alert | None:
    """The announcement of one ``fifo_version_diff`` materialization (plain metadata values),
    or None when the version has no predecessor to compare with."""
    if metadata.get("old_version") is None:
        return None
    new = metadata["new_version"]
    before, after = metadata["pnl_before_usd_exact"], metadata["pnl_after_usd_exact"]
    delta = metadata["pnl_delta_usd_exact"]
    return Alert(
        title=f"FIFO version {new}: realized PnL {before} -> {after} USD (delta {delta})",
        severity="INFO", asset_key=DIFF_ASSET.to_user_string(), allocation_version=str(new),
        run_id=run_id,
        description=f"Compared with version {metadata['old_version']}: "
                    f"{metadata.get('changed_sells', 0)} sells changed, "
                    f"{metadata.get('newly_matched', 0)} newly matched, "
                    f"{metadata.get('newly_unmatched', 0)} newly unmatched.",
        details=tuple(f"{row['symbol']}: {row['before']} -> {row['after']} USD "
                      f"(delta {row['delta']})" for row in metadata.get("symbols", []))[:10])


def build_announcement_sensor(
    sender_factory: Callable[[], AlertSender],
    minimum_interval_seconds: int = 30,
) -> dg.SensorDefinition:
    """The sensor; ``sender_factory`` is called only when there is something to send."""
    factory = sender_factory

    @dg.sensor(name="fifo_version_announcement_sensor",
               minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Announces each new FIFO version and its realized-PnL delta on the "
                           "alert channels, once, from fifo_version_diff's metadata.")
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else None
        instance = context.instance
        if cursor is None:  # first tick: announce from now on, not the past
            latest = instance.fetch_materializations(DIFF_ASSET, limit=1).records
            return dg.SensorResult(
                skip_reason="watching fifo_version_diff from now on",
                cursor=json.dumps({"after": latest[0].storage_id if latest else 0,
                                   "version": 0, "owed": {}}))
        deliver = Delivery(factory, cursor.get("owed", {}))
        after, announced = cursor["after"], cursor["version"]
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=DIFF_ASSET, after_storage_id=after),
            limit=_FETCH_LIMIT, ascending=True).records
        for record in records:
            materialization = record.asset_materialization
            metadata = {k: getattr(v, "value", v)
                        for k, v in (materialization.metadata if materialization else {}).items()}
            alert = announcement(metadata, record.run_id)
            version = int(metadata.get("new_version") or 0)
            if alert is not None and version > announced:
                if not deliver(f"version:{version}", alert):
                    break  # owed channels retry next tick, from this record
                announced = version
            after = record.storage_id
        return dg.SensorResult(
            skip_reason=deliver.summary(len(records)),
            cursor=json.dumps({"after": after, "version": announced, "owed": deliver.owed}))

    return _sensor
