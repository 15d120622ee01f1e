"""AlertSender against a real local webhook server and real local SMTP servers."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from recon_assets.alerts.messages import Alert
from recon_assets.alerts.senders import AlertSender
from recon_assets.settings import AlertSettings
from recon_assets_tests.alerts.conftest import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET_PATH,
    SmtpServer,
    Webhook,
)

ALERT = Alert(title="Asset check c failed on fifo_allocations", severity="ERROR",
              description="3 rows are wrong", asset_key="fifo_allocations", check_name="c",
              allocation_version="4", details=("failing_count: 3",), run_id="run-1")


def _email_settings(server: SmtpServer, **overrides: object) -> AlertSettings:
    fields: dict = dict(smtp_host=server.host, smtp_port=server.port,
                        alert_from="recon@example.com", alert_to=("ops@example.com",))
    fields.update(overrides)
    return AlertSettings(**fields)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slack_gets_one_post_with_the_alert_and_no_secret(webhook: Webhook) -> None:
    sender = AlertSender(AlertSettings(slack_webhook_url=webhook.url))

    assert sender.enabled_channels == ("slack",)
    assert sender.send(ALERT) == ["slack"]

    assert webhook.paths == [WEBHOOK_SECRET_PATH]
    [post] = webhook.posts
    assert post["text"] == ALERT.subject
    assert "3 rows are wrong" in json.dumps(post)
    assert WEBHOOK_SECRET_PATH not in json.dumps(post)


def test_slack_server_errors_are_retried(webhook: Webhook) -> None:
    webhook.statuses = [500, 503]
    sender = AlertSender(AlertSettings(slack_webhook_url=webhook.url), retry_backoff_seconds=0)

    assert sender.send(ALERT) == ["slack"]
    assert len(webhook.posts) == 3


def test_slack_client_error_is_not_retried_and_logged_without_the_url(
        webhook: Webhook, caplog: pytest.LogCaptureFixture) -> None:
    webhook.statuses = [404]
    sender = AlertSender(AlertSettings(slack_webhook_url=webhook.url), retry_backoff_seconds=0)

    assert sender.send(ALERT) == []
    assert len(webhook.posts) == 1
    assert "slack failed (HTTP 404)" in caplog.text
    assert "T0SECRET" not in caplog.text


def test_unreachable_slack_is_logged_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_closed_port()}{WEBHOOK_SECRET_PATH}"
    sender = AlertSender(AlertSettings(slack_webhook_url=url), retry_backoff_seconds=0)

    assert sender.send(ALERT) == []
    assert "slack failed (connection failed)" in caplog.text
    assert "T0SECRET" not in caplog.text


def test_email_over_plain_smtp(smtp_server: SmtpServer) -> None:
    sender = AlertSender(_email_settings(smtp_server))

    assert sender.enabled_channels == ("email",)
    assert sender.send(ALERT) == ["email"]

    assert smtp_server.inbox.envelopes == [("recon@example.com", ["ops@example.com"])]
    [message] = smtp_server.inbox.messages
    assert message["Subject"] == ALERT.subject
    body = message.get_content()
    assert "3 rows are wrong" in body and "/runs/run-1" in body


def test_email_uses_starttls_and_logs_in(tls_smtp_server: SmtpServer) -> None:
    sender = AlertSender(_email_settings(tls_smtp_server, smtp_user=SMTP_USER,
                                         smtp_password=SMTP_PASSWORD))

    assert sender.send(ALERT) == ["email"]

    [message] = tls_smtp_server.inbox.messages
    assert SMTP_PASSWORD not in message.as_string()


def test_password_is_never_sent_without_tls(smtp_server: SmtpServer,
                                            caplog: pytest.LogCaptureFixture) -> None:
    sender = AlertSender(_email_settings(smtp_server, smtp_user=SMTP_USER,
                                         smtp_password=SMTP_PASSWORD))

    assert sender.send(ALERT) == []
    assert smtp_server.inbox.messages == []
    assert "refusing to send the password in clear" in caplog.text
    assert SMTP_PASSWORD not in caplog.text


def test_a_failing_channel_does_not_stop_the_others(
        webhook: Webhook, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    webhook.statuses = [500, 500, 500]
    sender = AlertSender(_email_settings(smtp_server, slack_webhook_url=webhook.url),
                         retry_backoff_seconds=0)

    assert sender.enabled_channels == ("slack", "email")
    assert sender.send(ALERT) == ["email"]
    assert len(smtp_server.inbox.messages) == 1
    assert "slack failed (HTTP 500)" in caplog.text


def test_extra_secrets_are_redacted_from_what_is_sent(webhook: Webhook,
                                                     smtp_server: SmtpServer) -> None:
    leaky = Alert(title="Run of sync failed", severity="ERROR",
                  description="auth failed for key s3cr3t-api-secret")
    sender = AlertSender(_email_settings(smtp_server, slack_webhook_url=webhook.url),
                         redact=["s3cr3t-api-secret"])

    assert sender.send(leaky) == ["slack", "email"]
    assert "s3cr3t-api-secret" not in json.dumps(webhook.posts)
    assert "s3cr3t-api-secret" not in smtp_server.inbox.messages[0].as_string()


def test_no_channel_is_a_noop_that_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sender = AlertSender(AlertSettings(smtp_host="mail.example.com"))  # no recipients

    assert sender.enabled_channels == ()
    assert sender.send(ALERT) == []
    assert "No alert channel configured" in caplog.text
