"""Exchange faults end to end: throttling and server errors change nothing in the result; a dead
exchange is exit code 3 and one line on stderr.

The client-level guarantees these rest on are tested beside the client:
``exchange/test_client_exchange.py`` (exact paging through faults, bounded retries, a repeated
cursor is an error: ``test_a_repeating_cursor_is_an_error``; answers cut off mid-body, plain-text
401s and HTML error pages) and ``exchange/test_sync_fills.py`` (a sync the exchange stops keeps
its committed pages and resumes after them).
"""

from __future__ import annotations

import json
import socket

import dagster as dg
import pandas as pd
import pytest

from recon_assets.cli import main
from recon_assets.exchange.assets import exchange_fills
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.models import normalize_fills
from recon_assets.exchange.resources import ExchangeResource
from recon_assets.settings import load_settings
from recon_assets.exchange.simulator import Simulator, create_ec_key_file
from recon_assets.ledger.fills import read_fills
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.reliability.conftest import child_env, run_cli

HISTORY = demo_history()


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_tier3_through_rate_limits_and_server_errors_is_exact_and_clean(
        sqlite_url, tmp_path, monkeypatch, capsys):
    seed_trade_records(sqlite_url, HISTORY.orders)  # the complete ledger: nothing to find
    key_file = tmp_path / "sim-key.json"
    with Simulator(HISTORY.fills, key_file, rate_limit=5, fail_rate=0.2, seed=1) as simulator:
        monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(key_file))
        monkeypatch.setenv("DATABASE_URL", sqlite_url)
        assert main(["reconcile", "--tier", "3", "--json", "-q"]) == 0
        served = simulator.stats.by_status
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["tier"] == 3
    for finding in ("missing_orders", "phantom_orders", "mismatches", "duplicates"):
        assert report[finding] == [], finding
    assert any(status >= 500 for status in served), served  # the faults really happened

    archive = read_fills(LedgerStore(sqlite_url)).drop(columns="user_id")
    expected, problems = normalize_fills(HISTORY.fills)
    assert problems == []
    pd.testing.assert_frame_equal(archive, expected.drop(columns="user_id"))


def test_a_dead_exchange_is_exit_3_and_one_line_on_stderr(sqlite_url, tmp_path, closed_port):
    key_file = tmp_path / "key.json"
    create_ec_key_file(key_file)
    url = f"http://127.0.0.1:{closed_port}"
    result = run_cli(["reconcile", "--tier", "3", "--json", "-q"], env=child_env(
        RECON_EXCHANGE_URL=url, COINBASE_KEY_FILE=str(key_file), DATABASE_URL=sqlite_url))
    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("recon-assets: ")
    assert "connection error after" in lines[0] and url in lines[0]
    assert "Traceback" not in lines[0] and "recon_assets.errors" not in lines[0]
    assert result.stdout == ""


def test_the_retry_budget_is_a_resource_setting(sqlite_url, tmp_path, closed_port, monkeypatch):
    """Deployments tune how long a dead exchange is retried without any environment variable:
    the ``exchange`` resource's ``max_attempts`` and ``max_retry_seconds`` (run config or UI)."""
    key_file = tmp_path / "key.json"
    create_ec_key_file(key_file)
    monkeypatch.setenv("RECON_EXCHANGE_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("COINBASE_KEY_FILE", str(key_file))
    result = dg.materialize(
        [exchange_fills], raise_on_error=False,
        resources={"exchange": ExchangeResource.from_settings(
                       load_settings(), max_attempts=2, max_retry_seconds=5),
                   "ledger": LedgerResource(database_url=sqlite_url)})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    while error.cause is not None and error.cls_name != "ExchangeError":
        error = error.cause
    assert error.cls_name == "ExchangeError"
    assert "connection error after 2 attempts" in error.message


def test_a_plain_text_401_is_exit_3_and_one_clean_line(sqlite_url, tmp_path, capfd, monkeypatch):
    other_key = tmp_path / "not-the-servers-key.json"
    create_ec_key_file(other_key)
    with Simulator(HISTORY.fills[:10], tmp_path / "sim-key.json") as simulator:
        monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(other_key))
        monkeypatch.setenv("DATABASE_URL", sqlite_url)
        assert main(["sync", "-q"]) == 3
        assert simulator.stats.by_status == {401: 1}  # not retried
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith("HTTP 401 Unauthorized (attempt 1)"), err


def test_html_error_pages_are_retried_and_end_in_one_line(sqlite_url, tmp_path, monkeypatch):
    key_file = tmp_path / "sim-key.json"
    with Simulator(HISTORY.fills[:10], key_file, fail_rate=1.0, html_errors=True) as simulator:
        monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(key_file))
        result = dg.materialize(
            [exchange_fills], raise_on_error=False,
            resources={"exchange": ExchangeResource.from_settings(
                           load_settings(), max_attempts=3, max_retry_seconds=10),
                       "ledger": LedgerResource(database_url=sqlite_url)})
        assert simulator.stats.requests == 3
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    while error.cause is not None and error.cls_name != "ExchangeError":
        error = error.cause
    assert error.cls_name == "ExchangeError" and "after 3 attempts" in error.message
    assert "<" not in error.message and "\n" not in error.message.strip()
