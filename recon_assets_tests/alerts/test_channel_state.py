"""Each alert channel keeps its own delivery state in the sensor cursor: a channel that failed
is retried next tick until it takes the alert, one that took it never gets it again, and a
webhook that hangs costs a tick one timeout."""

from __future__ import annotations

import json
import threading
import time

import dagster as dg

from recon_assets.settings import AlertSettings
from recon_assets_tests.alerts.conftest import HungWebhook, SmtpServer, Webhook
from recon_assets_tests.alerts.test_sensors import (  # noqa: F401 - instance is a fixture
    Ticker, _materialize, check_toy_ledger_balanced, check_toy_ledger_recent, instance,
    toy_broken)


def _settings(slack_url: str, smtp: SmtpServer) -> AlertSettings:
    return AlertSettings(slack_webhook_url=slack_url, smtp_host=smtp.host, smtp_port=smtp.port,
                         alert_from="recon@example.com", alert_to=("ops@example.com",))


def test_email_that_failed_is_retried_and_slack_that_took_it_is_not(
        instance: dg.DagsterInstance, webhook: Webhook, smtp_server: SmtpServer) -> None:
    ticker = Ticker(instance, _settings(webhook.url, smtp_server))
    smtp_server.inbox.refuse = 2
    _materialize(instance, check_toy_ledger_balanced)

    ticker.tick()
    assert (len(webhook.posts), smtp_server.inbox.refused) == (1, 1)
    assert "1 not delivered, retrying next tick (email failed)" in ticker.skip_message
    assert list(json.loads(ticker.cursor)["owed"].values()) == [["email"]]
    ticker.tick()
    assert (len(webhook.posts), smtp_server.inbox.refused) == (1, 2)
    ticker.tick()
    assert (len(webhook.posts), len(smtp_server.inbox.messages)) == (1, 1)
    ticker.tick()
    assert (len(webhook.posts), len(smtp_server.inbox.messages)) == (1, 1)
    assert ticker.skip_message.startswith("No new failures")
    assert json.loads(ticker.cursor)["owed"] == {}


def test_a_run_failure_slack_refused_is_retried_there_only(
        instance: dg.DagsterInstance, webhook: Webhook, smtp_server: SmtpServer) -> None:
    ticker = Ticker(instance, _settings(webhook.url, smtp_server))
    ticker.tick()
    dg.materialize([toy_broken], instance=instance, raise_on_error=False)
    webhook.statuses = [500, 500, 500]

    ticker.tick()
    assert (len(webhook.posts), len(smtp_server.inbox.messages)) == (3, 1)  # 3 refused posts
    ticker.tick()
    assert (len(webhook.posts), len(smtp_server.inbox.messages)) == (4, 1)
    ticker.tick()
    assert (len(webhook.posts), len(smtp_server.inbox.messages)) == (4, 1)


def _timed_tick(ticker: Ticker, limit: float) -> float:
    """Tick in a thread; fail (instead of hanging the suite) if it outlives ``limit``."""
    done = threading.Event()
    started = time.monotonic()
    worker = threading.Thread(target=lambda: (ticker.tick(), done.set()), daemon=True)
    worker.start()
    worker.join(limit)
    assert done.is_set(), f"the sensor tick did not finish within {limit}s"
    return time.monotonic() - started


def test_a_hung_webhook_times_out_and_the_tick_finishes(
        instance: dg.DagsterInstance, hung_webhook: HungWebhook,
        smtp_server: SmtpServer) -> None:
    ticker = Ticker(instance, _settings(hung_webhook.url, smtp_server), timeout_seconds=1.0)
    _materialize(instance, check_toy_ledger_balanced, check_toy_ledger_recent)

    elapsed = _timed_tick(ticker, limit=10)
    assert elapsed < 3.5  # one 1 s timeout: the second alert does not wait for slack again
    assert len(smtp_server.inbox.messages) == 2
    assert "2 not delivered, retrying next tick (slack failed)" in ticker.skip_message
    assert sorted(json.loads(ticker.cursor)["owed"].values()) == [["slack"], ["slack"]]

    assert _timed_tick(ticker, limit=10) < 3.5  # still hung: retried, e-mail not resent
    assert len(smtp_server.inbox.messages) == 2 and len(hung_webhook.connections) == 2
