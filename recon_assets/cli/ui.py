"""``recon-assets ui``: the Dagster UI over the same instance and settings as the CLI.

It prepares ``$DAGSTER_HOME`` exactly as every CLI command does (``$RECON_HOME/dagster`` with
the CLI's instance yaml unless ``DAGSTER_HOME`` is set), so the UI lists the CLI's runs, and
``dagster dev`` never creates a ``.tmp_dagster_home_*`` in the checkout. ``RECON_HOME`` is
exported resolved, so the code server opens the same ledger whatever its working directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from recon_assets.cli.runner import prepare

#: The checkout's workspace (``working_directory: .`` is relative to this file).
WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"


def ui_command(host: str, port: int) -> list[str]:
    """The ``dagster dev`` command line: the checkout's workspace, or the module when the
    package is installed without one."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    target = (["-w", str(WORKSPACE)] if WORKSPACE.is_file()
              else ["-m", "recon_assets.definitions", "-a", "defs"])
    return [dagster, "dev", *target, "--host", host, "--port", str(port)]


def run_ui(args: argparse.Namespace) -> int:
    """Replace this process with ``dagster dev`` (its Ctrl-C stops the webserver and daemon)."""
    settings = prepare()
    os.environ["RECON_HOME"] = str(settings.recon_home)
    command = ui_command(args.host, args.port)
    os.execv(command[0], command)
    return 0  # not reached: execv does not return
