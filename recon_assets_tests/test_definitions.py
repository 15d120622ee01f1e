"""The definitions load, name what SPEC section 7 promises, and pass `dagster definitions
validate` exactly as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from recon_assets.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_defs_can_load():
    dg.Definitions.validate_loadable(defs)


def test_spec_asset_keys_checks_schedules_and_sensors():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"exchange_fills", "database_trades", "fifo_allocations", "unmatched_sells",
            "missing_orders"} <= keys
    checks = {k.name for k in graph.asset_check_keys}
    assert "check_fifo_allocations_no_buy_over_allocated" in checks
    assert "check_database_trades_no_duplicates" in checks
    schedule = defs.resolve_schedule_def("weekly_reconciliation_schedule")
    assert schedule.cron_schedule == "15 9 * * 0"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    for name in ("ledger_change_sensor", "check_failure_alert_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_dagster_definitions_validate_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COINBASE_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path)
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dg_check_defs_from_the_checkout(tmp_path):
    """``[tool.dg]`` in pyproject.toml makes the checkout a ``dg`` project."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COINBASE_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path)
    dg_cli = Path(sys.executable).with_name("dg")
    result = subprocess.run([str(dg_cli), "check", "defs"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_importing_reads_no_configuration_and_defs_follow_the_environment(monkeypatch,
                                                                           tmp_path):
    """``defs`` is built when asked for, from the environment in force then."""
    import recon_assets.definitions as definitions

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'one.db'}")
    assert definitions.defs.resources["ledger"].database_url == "DATABASE_URL"  # an EnvVar
    monkeypatch.delenv("DATABASE_URL")
    ledger = definitions.defs.resources["ledger"]
    assert ledger.database_url == f"sqlite:///{tmp_path / 'recon_home' / 'ledger.db'}"
    assert ledger.reports_dir() == tmp_path / "recon_home" / "reports"
