"""What the Dagster UI shows is the truth (issue 15), read over the webserver's GraphQL API as
the UI reads it, on the state `recon-assets demo` leaves:

- every FIFO version is a partition with its own check results;
- damaging and validating an old version turns only that version's checks red, and no alert
  names the current version;
- an order deleted from the ledger fails a check on ``missing_orders`` in the weekly job, and
  the alert sensor sends exactly one alert for it;
- a usage error of each command leaves the run count unchanged;
- materializing ``fifo_allocations`` again with no ledger change writes no version;
- PnL metadata is numeric.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy import text

from recon_assets.alerts.senders import AlertSender
from recon_assets.alerts.sensors import build_check_alert_sensor
from recon_assets.cli import main
from recon_assets.definitions import build_definitions
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import AlertSettings, load_settings
from recon_assets_tests.production.services import free_port

ASSET_NODES = """{ assetNodes { assetKey { path } isPartitioned partitionKeys } }"""
CHECK_EXECUTIONS = """query ($check: String!, $asset: [String!]!, $partition: String) {
  assetCheckExecutions(assetKey: {path: $asset}, checkName: $check, partition: $partition,
                       limit: 1) { id partition evaluation { success severity } } }"""
RUN_COUNT = "{ runsOrError { ... on Runs { count } } }"
MATERIALIZATION = """query ($partition: String!) {
  assetOrError(assetKey: {path: ["fifo_allocations"]}) { ... on Asset {
    assetMaterializations(partitions: [$partition], limit: 1) {
      partition metadataEntries { label __typename } } } } }"""


def _graphql(port: int, query: str, **variables: Any) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


def _latest_check(port: int, check: str, partition: str | None = None,
                  asset: str = "fifo_allocations") -> dict:
    [execution] = _graphql(port, CHECK_EXECUTIONS, check=check, asset=[asset],
                           partition=partition)["assetCheckExecutions"]
    return execution


def _run_count(port: int) -> int:
    return _graphql(port, RUN_COUNT)["runsOrError"]["count"]


def _start_ui(port: int) -> subprocess.Popen:
    ui = subprocess.Popen([str(Path(sys.executable).with_name("recon-assets")), "ui", "--port",
                           str(port)], env=dict(os.environ), start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and ui.poll() is None:
        try:
            if any(n["assetKey"]["path"] == ["fifo_allocations"]
                   for n in _graphql(port, ASSET_NODES)["assetNodes"]):
                return ui
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(2)
    os.killpg(ui.pid, signal.SIGTERM)
    raise AssertionError("the UI did not come up")


class _Alerts:
    """The check alert sensor of the definitions, ticked in-process on the UI's instance with
    a real sender posting to the local webhook."""

    def __init__(self, webhook: Any) -> None:
        self.webhook = webhook
        self.sensor = build_check_alert_sensor(sender_factory=lambda: AlertSender(
            AlertSettings(slack_webhook_url=webhook.url)))
        self.repository = build_definitions(load_settings()).get_repository_def()
        self.cursor: str | None = None

    def tick(self) -> list[str]:
        """The alerts this tick sent, as their JSON text."""
        before = len(self.webhook.posts)
        with dg.DagsterInstance.get() as instance:
            result = self.sensor(dg.build_sensor_context(
                instance=instance, cursor=self.cursor, repository_def=self.repository))
        self.cursor = result.cursor
        return [json.dumps(p) for p in self.webhook.posts[before:]]


def test_the_ui_tells_the_truth_about_versions_findings_and_refusals(webhook, capsys):
    assert main(["demo"]) == 0
    store = LedgerStore(load_settings().database_url)
    port = free_port()
    ui = _start_ui(port)
    try:
        nodes = {tuple(n["assetKey"]["path"]): n for n in _graphql(port, ASSET_NODES)["assetNodes"]}
        fifo = nodes[("fifo_allocations",)]
        assert fifo["isPartitioned"] and {"1", "2"} <= set(fifo["partitionKeys"])
        for version in ("1", "2"):
            check = _latest_check(port, "check_fifo_allocations_arithmetic", version)
            assert check["partition"] == version and check["evaluation"]["success"]
        for entry in _graphql(port, MATERIALIZATION, partition="2")[
                "assetOrError"]["assetMaterializations"][0]["metadataEntries"]:
            if entry["label"] == "total_pnl_usd":
                assert entry["__typename"] == "FloatMetadataEntry"
                break
        else:
            raise AssertionError("no total_pnl_usd metadata on version 2")

        alerts = _Alerts(webhook)
        alerts.tick()  # the sensor's first tick: the demo's state

        # Materializing again with nothing changed writes no version (and the CLI no run).
        runs = _run_count(port)
        assert main(["fifo", "-q"]) == 0
        job = build_definitions(load_settings()).resolve_job_def("fifo_job")
        with dg.DagsterInstance.get() as instance:
            assert job.execute_in_process(instance=instance, partition_key="2").success
        with store.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM fifo_computation_log")).scalar() == 2
        assert _run_count(port) == runs + 1

        # Usage errors are refused before a run: the run count does not move.
        runs = _run_count(port)
        for argv in (["validate", "--version", "99"], ["fifo", "--symbol", "DOGE-USD"],
                     ["fifo", "--version", "1"], ["diff-versions", "5", "7"],
                     ["reconcile", "--tier", "1", "--version", "99"]):
            assert main(argv) == 2, argv
        assert _run_count(port) == runs

        # Auditing an old, damaged version changes only that version's checks and alerts.
        current = _latest_check(port, "check_fifo_allocations_arithmetic", "2")
        with store.begin() as conn:
            conn.execute(text(
                "UPDATE fifo_allocations SET pnl_usd = pnl_usd + 1 WHERE id = (SELECT min(id) "
                "FROM fifo_allocations WHERE allocation_version = 1 AND pnl_usd IS NOT NULL)"))
        assert main(["validate", "--version", "1", "-q"]) == 1
        assert _latest_check(port, "check_fifo_allocations_arithmetic", "2") == current
        damaged = _latest_check(port, "check_fifo_allocations_arithmetic", "1")
        assert damaged["evaluation"]["success"] is False
        sent = alerts.tick()
        assert sent and any("check_fifo_allocations_arithmetic" in a for a in sent)
        for alert in sent:
            assert "partition: 1" in alert and "partition: 2" not in alert, alert

        # A sell deleted from the ledger: the weekly job's missing_orders check fails, once.
        with store.begin() as conn:
            order_id = conn.execute(text(
                "SELECT order_id FROM trade_records WHERE side = 'sell' "
                "ORDER BY order_time LIMIT 1 OFFSET 40")).scalar()
            conn.execute(text("DELETE FROM trade_records WHERE order_id = :o"), {"o": order_id})
        weekly = build_definitions(load_settings()).resolve_job_def("weekly_reconciliation_job")
        with dg.DagsterInstance.get() as instance:
            assert weekly.execute_in_process(instance=instance).success
        missing = _latest_check(port, "check_missing_orders_no_missing", asset="missing_orders")
        assert missing["evaluation"]["success"] is False
        sent = alerts.tick()
        assert len(sent) == 1 and "check_missing_orders_no_missing" in sent[0], sent
        assert order_id in sent[0]
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    capsys.readouterr()
