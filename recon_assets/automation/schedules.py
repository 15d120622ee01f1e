"""The bot's rhythm as Dagster schedules: daily PnL report 09:05, daily validation 09:10,
weekly reconciliation Sunday 09:15 (each cron and the time zone from the settings)."""

from __future__ import annotations

import dagster as dg

from recon_assets.automation.jobs import daily_pnl_job, validate_job, weekly_reconciliation_job
from recon_assets.ledger import versions
from recon_assets.ledger.resources import LedgerResource
from recon_assets.settings import Settings


def _on_latest_version(name: str, job: dg.JobDefinition | dg.UnresolvedAssetJobDefinition,
                       cron: str, timezone: str, description: str) -> dg.ScheduleDefinition:
    """A schedule running ``job`` on the partition of the latest FIFO version (skipped, with
    the reason, while there is none)."""

    @dg.schedule(name=name, job=job, cron_schedule=cron, execution_timezone=timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
    def _schedule(context: dg.ScheduleEvaluationContext, ledger: LedgerResource):
        with ledger.get_store().connect() as conn:
            latest = versions.latest_version(conn)
        if latest is None:
            return dg.SkipReason("no FIFO version yet")
        key = str(latest.version)
        return dg.RunRequest(run_key=f"{name}-{context.scheduled_execution_time:%Y%m%d%H%M}",
                             partition_key=key)

    return _schedule


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    """The weekly reconciliation, the daily validation and the daily PnL report; all run
    without a click in the UI."""
    weekly = dg.ScheduleDefinition(
        name="weekly_reconciliation_schedule", job=weekly_reconciliation_job,
        cron_schedule=settings.weekly_cron, execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Sync, tier 2 reconciliation and every check of the archive, the ledger "
                    "and the findings (the job's own defaults).")
    daily = _on_latest_version(
        "daily_validation_schedule", validate_job, settings.daily_validation_cron,
        settings.schedule_timezone, "Validate the latest FIFO version against today's ledger.")
    pnl = _on_latest_version(
        "daily_pnl_report_schedule", daily_pnl_job, settings.daily_pnl_cron,
        settings.schedule_timezone, "Realized PnL per symbol and day of the latest FIFO version.")
    return [weekly, daily, pnl]
