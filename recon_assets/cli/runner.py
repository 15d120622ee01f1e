"""One shared setup path for every command: settings, the Dagster instance, and running a job.

Jobs come from ``recon_assets.definitions:defs``, the same object ``dagster dev`` loads, and run
in-process against ``$DAGSTER_HOME`` (default ``$RECON_HOME/dagster``) so CLI runs show in the UI.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from recon_assets.errors import ReconError
from recon_assets.settings import Settings, load_settings


@dataclass
class JobOutcome:
    """What a command needs from a finished run: metadata and check results by name."""

    run_id: str
    materializations: dict[str, dict[str, Any]]
    checks: list[Any]  # dagster AssetCheckEvaluation

    def metadata(self, asset: str) -> dict[str, Any]:
        """Plain values of an asset's materialization metadata (empty if it did not run)."""
        return self.materializations.get(asset, {})


def prepare(settings: Settings | None = None) -> Settings:
    """Load settings and point Dagster at a persistent home so runs show in the UI."""
    settings = settings or load_settings()
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    return settings


def log_level(args: argparse.Namespace) -> str:
    if getattr(args, "verbose", False):
        return "DEBUG"
    return "WARNING" if getattr(args, "quiet", False) else "INFO"


def run_job(job_name: str, op_config: dict[str, Any] | None = None, *, level: str = "INFO",
            tags: dict[str, str] | None = None) -> JobOutcome:
    """Execute one job of the definitions in-process; our typed errors surface unchanged."""
    import dagster as dg

    from recon_assets.definitions import defs

    prepare()
    job = defs.get_job_def(job_name)
    run_config = {"loggers": {"console": {"config": {"log_level": level}}}}
    if op_config:
        run_config["ops"] = {op: {"config": cfg} for op, cfg in op_config.items()}
    with dg.DagsterInstance.get() as instance:
        try:
            result = job.execute_in_process(run_config=run_config, instance=instance,
                                            tags={"recon-assets/cli": job_name, **(tags or {})})
        except dg.DagsterUserCodeExecutionError as exc:
            if isinstance(exc.user_exception, ReconError):
                raise exc.user_exception from None
            raise
    materializations = {}
    for event in result.get_asset_materialization_events():
        mat = event.asset_materialization
        materializations[mat.asset_key.to_user_string()] = {
            k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return JobOutcome(run_id=result.run_id, materializations=materializations,
                      checks=list(result.get_asset_check_evaluations()))
