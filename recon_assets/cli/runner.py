"""One shared setup path for every command: settings, the Dagster instance, and running a job.

Jobs come from ``build_definitions`` over the settings in force (as ``defs``, which ``dagster
dev`` loads), and run
in-process against ``$DAGSTER_HOME`` (default ``$RECON_HOME/dagster``) so CLI runs show in the UI.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from recon_assets.errors import ConfigError, RunFailedError, error_classes
from recon_assets.settings import Settings, load_settings


DEFAULT_INSTANCE_YAML = """\
# Dagster instance created by recon-assets for the CLI: runs, events and schedules are stored
# in SQLite files in this folder. For production use deploy/dagster.yaml (PostgreSQL).
telemetry:
  enabled: false
"""


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
    # Dagster's own config (deploy/dagster.yaml) reads variables such as DAGSTER_PG_URL from
    # the environment; export the .env ones (never overriding) so .env drives the CLI like
    # it drives `dagster dev` and the daemon.
    load_dotenv(Path.cwd() / ".env", override=False)
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
        instance_yaml = settings.dagster_home / "dagster.yaml"
        if not instance_yaml.exists():  # our default home: local storage, no telemetry
            settings.dagster_home.mkdir(parents=True, exist_ok=True)
            instance_yaml.write_text(DEFAULT_INSTANCE_YAML, encoding="utf-8")
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    return settings


def check_version(version: int | None, option: str = "--version") -> None:
    """FIFO versions are numbered from 1: refuse 0 or below before anything is computed or a
    run is recorded (a version 0 would be written, or looked up, as if it were one)."""
    if version is not None and version < 1:
        raise ConfigError(f"{option} must be a FIFO version number (1 or more), got {version}")


def log_level(args: argparse.Namespace) -> str:
    if getattr(args, "verbose", False):
        return "DEBUG"
    return "WARNING" if getattr(args, "quiet", False) else "INFO"


def run_job(job_name: str, op_config: dict[str, Any] | None = None, *, level: str = "INFO",
            tags: dict[str, str] | None = None, partition_key: str | None = None
            ) -> JobOutcome:
    """Execute one job of the definitions in-process; our typed errors surface unchanged.

    With ``partition_key`` the run is of that FIFO version partition (``fifo_versions``);
    the partition is added first when it is new, as Dagster runs only known partitions.
    """
    from recon_assets.cli.console import cli_console_logger
    from recon_assets.definitions import build_definitions

    defs = build_definitions(prepare())
    job = defs.resolve_job_def(job_name).with_logger_defs({"console": cli_console_logger})
    if "exchange" in job.required_resource_keys:
        # The run would fail at its first step with the same error; refusing here keeps the
        # answer to one line and leaves no failed run behind for a configuration mistake.
        defs.resources["exchange"].check_configured()
    run_config = {"loggers": {"console": {"config": {"log_level": level}}}}
    if op_config:
        run_config["ops"] = {op: {"config": cfg} for op, cfg in op_config.items()}
    with _instance() as instance:
        if partition_key is not None:
            _add_partition(instance, partition_key)
        result = job.execute_in_process(run_config=run_config, instance=instance,
                                        raise_on_error=False, partition_key=partition_key,
                                        tags={"recon-assets/cli": job_name, **(tags or {})})
    if not result.success:
        _raise_failure(result)
    materializations = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        materializations[mat.asset_key.to_user_string()] = {
            k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return JobOutcome(run_id=result.run_id, materializations=materializations,
                      checks=list(result.get_asset_check_evaluations()))


def _instance() -> Any:
    """The Dagster instance of ``$DAGSTER_HOME``, opened under a lock file there: the first
    open creates its SQLite storage, and two commands racing to create it would fail."""
    import dagster as dg
    from filelock import FileLock

    with FileLock(os.path.join(os.environ["DAGSTER_HOME"], ".recon-assets-instance.lock")):
        return dg.DagsterInstance.get()


def _add_partition(instance: Any, key: str) -> None:
    """Add ``fifo_versions`` partition ``key`` unless it is there. Two commands planning the
    same version race here: the lock orders this host's commands, and Dagster's unique index
    turns a racer elsewhere (the daemon's sensor) into an IntegrityError meaning "added"."""
    from filelock import FileLock
    from sqlalchemy.exc import IntegrityError

    from recon_assets.fifo.partitions import FIFO_VERSIONS

    name = FIFO_VERSIONS.name
    with FileLock(os.path.join(os.environ["DAGSTER_HOME"], ".recon-assets-partitions.lock")):
        if instance.has_dynamic_partition(name, key):
            return
        try:
            instance.add_dynamic_partitions(name, [key])
        except IntegrityError:
            if not instance.has_dynamic_partition(name, key):
                raise


def _raise_failure(result: Any) -> None:
    """Turn a failed run into one clear error; failed blocking checks are findings, not this.

    Our typed errors keep their exit code (their class is recognized in the run's error
    record); anything else is a failure (exit 3) that points at the run in the UI.
    """
    known = error_classes()
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        info = event.step_failure_data.error
        while info is not None:
            if info.cls_name == "DagsterAssetCheckFailedError":
                break
            cls = known.get(info.cls_name)
            if cls is not None:
                message = _without_class(info.message.strip(), info.cls_name)
                raise RunFailedError(message.splitlines()[0], cls.exit_code)
            if info.cause is None:
                raise RunFailedError(f"step {event.step_key} failed: "
                                     f"{info.message.strip().splitlines()[0]} "
                                     f"(run {result.run_id}; details in the Dagster UI)")
            info = info.cause


def _without_class(message: str, cls_name: str) -> str:
    """``recon_assets.errors.ExchangeError: GET ...`` -> ``GET ...`` (Dagster records the
    exception as ``traceback`` formats it: with the module path)."""
    return re.sub(rf"^(?:[\w.]+\.)?{re.escape(cls_name)}: ", "", message)
