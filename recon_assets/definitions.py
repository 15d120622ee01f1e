"""``defs``: everything Dagster loads (``workspace.yaml`` points here, and so does the CLI).

Each domain keeps its own assets, checks and automation; this module only assembles them, with
one set of resources. :func:`build_definitions` turns typed settings into typed resources
(secrets as ``dg.EnvVar`` references), the schedules' cron and time zone and the executor every
job gets (``RECON_EXECUTOR``, see ``recon_assets.execution``). The CLI builds its own per
command from the settings in force; ``defs`` is the one ``dagster dev`` loads.
"""

from __future__ import annotations

import warnings
from functools import partial

import dagster as dg

# Observable sources and output data versions are Dagster beta features chosen on purpose
# (the ledger as an observed source); their notices would only clutter every command. The
# preview notice of partitioned checks is silenced where those are defined (fifo.partitions).
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from recon_assets.alerts.announcements import build_announcement_sensor
from recon_assets.alerts.senders import sender_for
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
from recon_assets.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The definitions for ``settings``: resources, schedules and executor built once here,
    so nothing else reads configuration."""
    alerts = partial(sender_for, settings)  # the channels chosen here, once
    return dg.Definitions(
        assets=[trade_records, exchange_fills, database_trades, fifo_allocations,
                fifo_version_status, unmatched_sells,
                missing_orders, reconciliation_report, fifo_version_diff, daily_pnl_report],
        asset_checks=[validate_fifo_allocations],
        jobs=[*JOBS, backfill_review_job],
        schedules=build_schedules(settings),
        sensors=[ledger_change_sensor, build_check_alert_sensor(alerts),
                 build_announcement_sensor(alerts)],
        resources={"ledger": LedgerResource.from_settings(settings),
                   "exchange": ExchangeResource.from_settings(settings)},
        executor=build_executor(settings.executor),
    )


@dg.definitions
def lazy_defs() -> dg.Definitions:
    """What ``dg`` (``[tool.dg]`` in pyproject.toml) finds in this module: the same
    definitions as ``defs``, built when loaded."""
    return build_definitions(load_settings())


def __getattr__(name: str) -> dg.Definitions:
    """``defs`` (what ``workspace.yaml`` names) is built when it is asked for, from the
    settings in force then: importing this module reads no configuration, and a process whose
    environment changed (tests, the CLI) never gets resources from an older environment."""
    if name == "defs":
        return build_definitions(load_settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
