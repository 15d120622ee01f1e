"""``recon-assets ui`` serves the CLI's own instance: a run made by the CLI is in the UI, and
the UI shows a secret as the name of its environment variable, never its value."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from recon_assets.cli import main
from recon_assets.exchange.simulator import create_ec_key_file
from recon_assets_tests.production.services import free_port

CHECKOUT = Path(__file__).resolve().parents[1]
QUERY = '{ runsOrError { ... on Runs { results { runId tags { key value } } } } }'
RESOURCES = ('{ repositoriesOrError { ... on RepositoryConnection { nodes { '
             'allTopLevelResourceDetails { name configuredValues { key value type } } } } } }')


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["data"]


def _runs(port: int) -> list[dict] | None:
    """The UI's runs over GraphQL, or None while the webserver is not answering yet."""
    try:
        return _graphql(port, QUERY)["runsOrError"]["results"]
    except (OSError, KeyError, TypeError):
        return None


def test_the_ui_lists_the_cli_runs_and_leaves_no_tmp_home(tmp_path):
    assert main(["sync", "-q"]) == 0  # the embedded demo ledger and simulator
    port = free_port()
    before = set(CHECKOUT.glob(".tmp_dagster_home_*"))
    create_ec_key_file(tmp_path / "cdp.json")  # the UI's exchange: credentials in its env
    key = json.loads((tmp_path / "cdp.json").read_text())
    ui = subprocess.Popen([str(Path(sys.executable).with_name("recon-assets")), "ui", "--port",
                           str(port)],
                          env={**os.environ, "COINBASE_API_KEY": key["name"],
                               "COINBASE_API_SECRET": key["privateKey"]},
                          start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        runs = None
        while not runs and time.monotonic() < deadline and ui.poll() is None:
            time.sleep(2)
            runs = _runs(port)
        assert runs, "the UI did not answer with the CLI's runs"
        tags = [{t["key"]: t["value"] for t in run["tags"]} for run in runs]
        assert any(t.get("recon-assets/cli") == "sync_job" for t in tags)
        resources = _graphql(port, RESOURCES)["repositoriesOrError"]["nodes"][0]
        shown = json.dumps(resources)
        assert key["privateKey"] not in shown and json.dumps(key["privateKey"]) not in shown
        [exchange] = [r for r in resources["allTopLevelResourceDetails"]
                      if r["name"] == "exchange"]
        values = {v["key"]: (v["value"], v["type"]) for v in exchange["configuredValues"]}
        assert values["api_secret"] == ("COINBASE_API_SECRET", "ENV_VAR")
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    assert (tmp_path / "recon_home" / "dagster" / "dagster.yaml").is_file()
    assert set(CHECKOUT.glob(".tmp_dagster_home_*")) == before
    assert not list(tmp_path.glob(".tmp_dagster_home_*"))
