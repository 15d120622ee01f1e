"""End to end under the real daemon: nobody acts, and the ledger still gets its new FIFO
version and the failed check its one alert."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.automation.test_sensors_and_schedules import order
from recon_assets_tests.conftest import seed_trade_records

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 240  # a bound so a broken daemon fails the test instead of hanging it


def versions(url):
    store = LedgerStore(url)
    try:
        with store.connect() as conn:
            return conn.execute(text(
                "SELECT allocation_version, unmatched_count FROM fifo_computation_log "
                "ORDER BY allocation_version")).all()
    finally:
        store.dispose()


def wait_for(condition, what):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.slow
def test_daemon_recomputes_on_ledger_change_and_alerts_once(tmp_path, sqlite_url, webhook):
    seed_trade_records(sqlite_url, [order("b1", "buy", 1, "1", "100"),
                                    order("s1", "sell", 2, "2", "110")])
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COINBASE_", "RECON_", "DAGSTER_")) and k != "DATABASE_URL"}
    env.update(DAGSTER_HOME=str(home), DATABASE_URL=sqlite_url,
               RECON_HOME=str(tmp_path / "recon_home"), RECON_SLACK_WEBHOOK_URL=webhook.url)
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "daemon.log", "w"))
    try:
        wait_for(lambda: len(versions(sqlite_url)) >= 1, "version 1 from the ledger sensor")
        assert versions(sqlite_url)[0][1] == 1  # s1 is half unmatched
        wait_for(lambda: len(webhook.posts) >= 1, "the alert for the unmatched sell")

        seed_trade_records(sqlite_url, [order("b0", "buy", 1, "1", "90")])
        wait_for(lambda: len(versions(sqlite_url)) >= 2, "version 2 after the ledger changed")
        assert versions(sqlite_url)[1][1] == 0
        time.sleep(35)  # one more alert-sensor interval: nothing new must be sent
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    unmatched_alerts = [p for p in webhook.posts if "no_unmatched_sells" in str(p)]
    assert len(unmatched_alerts) == 1, webhook.posts
    assert len(versions(sqlite_url)) == 2
