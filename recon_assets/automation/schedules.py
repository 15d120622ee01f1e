"""The weekly reconciliation and the daily validation, as Dagster schedules."""

from __future__ import annotations

import dagster as dg

from recon_assets.automation.jobs import validate_job, weekly_reconciliation_job
from recon_assets.settings import Settings

DAILY_VALIDATION_CRON = "0 6 * * *"


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    """Schedules with the cron and time zone of the settings (RECON_WEEKLY_CRON,
    RECON_SCHEDULE_TIMEZONE); both run without a click in the UI."""
    weekly = dg.ScheduleDefinition(
        name="weekly_reconciliation_schedule", job=weekly_reconciliation_job,
        cron_schedule=settings.weekly_cron, execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Sync, FIFO for the latest ledger if it changed, tier 2 reconciliation, "
                    "and every check.")
    daily = dg.ScheduleDefinition(
        name="daily_validation_schedule", job=validate_job,
        cron_schedule=DAILY_VALIDATION_CRON, execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Validate the current FIFO version every morning.")
    return [weekly, daily]
