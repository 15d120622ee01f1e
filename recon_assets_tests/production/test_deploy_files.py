"""The deploy files themselves: systemd accepts the units, and ``.env.example`` names every
SPEC section 1 variable and loads as a valid configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from recon_assets.settings import load_settings
from recon_assets_tests.production.conftest import DEPLOY, ROOT

SPEC_VARIABLES = {
    "DATABASE_URL", "RECON_HOME", "DAGSTER_HOME", "COINBASE_API_KEY", "COINBASE_API_SECRET",
    "COINBASE_KEY_FILE", "RECON_EXCHANGE_URL", "RECON_SLACK_WEBHOOK_URL", "RECON_SMTP_HOST",
    "RECON_SMTP_PORT", "RECON_SMTP_USER", "RECON_SMTP_PASSWORD", "RECON_ALERT_FROM",
    "RECON_ALERT_TO"}
UNITS = ("recon-assets-webserver.service", "recon-assets-daemon.service")


def test_env_example_lists_every_setting_and_loads(tmp_path):
    values = dotenv_values(DEPLOY / ".env.example")
    assert SPEC_VARIABLES | {"DAGSTER_PG_URL"} <= set(values)
    assert values["DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")
    shutil.copy(DEPLOY / ".env.example", tmp_path / ".env")
    settings = load_settings(environ={}, cwd=tmp_path)
    assert str(settings.dagster_home) == values["DAGSTER_HOME"]
    assert settings.weekly_cron == "15 9 * * 0"
    assert settings.secrets() == []  # no secret shipped in the example


@pytest.mark.parametrize("unit", UNITS)
def test_units_run_the_services_from_the_checkout(unit):
    text = (DEPLOY / "systemd" / unit).read_text()
    command = re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()
    assert command[0].startswith("/opt/recon-assets/.venv/bin/dagster-")
    assert command[1:] in (["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3000"],
                           ["run", "-w", "workspace.yaml"])
    for line in ("WorkingDirectory=/opt/recon-assets", "EnvironmentFile=/opt/recon-assets/.env",
                 "Environment=DAGSTER_HOME=/var/lib/recon-assets/dagster", "Restart=always"):
        assert line in text.splitlines()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_units(tmp_path):
    """``systemd-analyze verify`` on the units, pointed at this checkout and venv instead of
    /opt/recon-assets (it checks the keys, values and that ExecStart is executable)."""
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        text = text.replace("/opt/recon-assets/.venv/bin", str(Path(sys.executable).parent))
        text = text.replace("/opt/recon-assets", str(ROOT))
        (tmp_path / unit).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / u) for u in UNITS)],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr.strip()) == (0, ""), result.stderr


def test_env_example_reads_the_same_in_a_shell():
    """`set -a; . ./.env` (README.md, section Production) gives the values python-dotenv gives."""
    values = {k: v for k, v in dotenv_values(DEPLOY / ".env.example").items()}
    script = f"set -a; . '{DEPLOY / '.env.example'}'; set +a; env -0"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                         env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    shell = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    assert {k: shell.get(k) for k in values} == values
