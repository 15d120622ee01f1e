"""``defs``: everything Dagster loads (``workspace.yaml`` points here, and so does the CLI).

Each domain keeps its own assets, checks and automation; this module only assembles them, with
one set of resources. Settings are read here, once, for the schedules' cron and time zone and
the executor every job gets (``RECON_EXECUTOR``, see ``recon_assets.execution``).
"""

from __future__ import annotations

import warnings

import dagster as dg

# Partitioned asset checks and observable sources are Dagster's own preview/beta features,
# chosen on purpose (versions as partitions); their notices would only clutter every command.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from recon_assets.alerts.announcements import build_announcement_sensor
from recon_assets.alerts.sensors import build_check_alert_sensor
from recon_assets.automation.jobs import JOBS
from recon_assets.automation.schedules import build_schedules
from recon_assets.automation.sensors import ledger_change_sensor
from recon_assets.exchange.assets import exchange_fills
from recon_assets.exchange.resources import ExchangeResource
from recon_assets.execution import build_executor
from recon_assets.fifo.assets import daily_pnl_report, fifo_version_status, unmatched_sells
from recon_assets.fifo.checks import validate_fifo_allocations
from recon_assets.fifo.fanout import fifo_allocations
from recon_assets.fifo.history_assets import fifo_version_diff
from recon_assets.ledger.assets import database_trades
from recon_assets.ledger.trade_records import trade_records
from recon_assets.ledger.resources import LedgerResource
from recon_assets.reconcile.assets import missing_orders, reconciliation_report
from recon_assets.reconcile.review_job import backfill_review_job
from recon_assets.settings import load_settings


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        assets=[trade_records, exchange_fills, database_trades, fifo_allocations,
                fifo_version_status, unmatched_sells,
                missing_orders, reconciliation_report, fifo_version_diff, daily_pnl_report],
        asset_checks=[validate_fifo_allocations],
        jobs=[*JOBS, backfill_review_job],
        schedules=build_schedules(settings),
        sensors=[ledger_change_sensor, build_check_alert_sensor(), build_announcement_sensor()],
        resources={"ledger": LedgerResource(), "exchange": ExchangeResource()},
        executor=build_executor(settings.executor),
    )


defs = build_definitions()
