"""The one gateway to alert channels: a Slack incoming webhook and SMTP e-mail.

Every alert leaves the process through :class:`AlertSender`, so retries, timeouts and the rule
that secrets never appear in logs live in one place. The webhook URL is itself a credential:
errors are logged by channel name and HTTP status or exception type, never with the URL.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from typing import Callable, Iterable, Sequence

import requests

from recon_assets.alerts.messages import Alert, redact, to_email, to_slack_payload
from recon_assets.settings import AlertSettings, Settings

logger = logging.getLogger(__name__)

SLACK = "slack"
EMAIL = "email"


class _DeliveryFailed(Exception):
    """A channel did not take the alert; the message is safe to log (no secrets)."""


class AlertSender:
    """Delivers an :class:`Alert` to every configured channel, each independently.

    Slack is on when ``slack_webhook_url`` is set; e-mail when ``smtp_host`` and ``alert_to``
    are. ``redact`` lists further secret values (e.g. ``Settings.secrets()``) to blank out of
    alert text, on top of this sender's own webhook URL and SMTP password.
    """

    def __init__(
        self,
        settings: AlertSettings,
        *,
        redact: Iterable[str] = (),
        timeout_seconds: float = 10.0,
        retries: int = 2,
        retry_backoff_seconds: float = 1.0,
    ) -> None:
        self._settings = settings
        self._secrets = tuple(
            s for s in (settings.slack_webhook_url, settings.smtp_password, *redact) if s)
        self._timeout = timeout_seconds
        self._retries = retries
        self._backoff = retry_backoff_seconds

    @property
    def enabled_channels(self) -> tuple[str, ...]:
        """The channels this sender will try, in delivery order."""
        channels = []
        if self._settings.slack_webhook_url:
            channels.append(SLACK)
        if self._settings.smtp_host and self._settings.alert_to:
            channels.append(EMAIL)
        return tuple(channels)

    def send(self, alert: Alert, channels: Sequence[str] | None = None) -> list[str]:
        """Send ``alert`` to ``channels`` (default: every one configured); return the
        channels that accepted it.

        A failing channel is logged and skipped so one outage never silences the others, and
        each gets at most ``timeout_seconds`` in all (retries included): a webhook that
        accepts the connection and never answers, or trickles its answer, cannot hold up the
        caller. A channel given up on keeps its worker thread until the socket's own timeout
        ends it, and may still deliver late: the caller retries it, so it may be sent twice,
        never lost.
        """
        alert = alert.redacted(self._secrets)
        enabled = self.enabled_channels
        channels = enabled if channels is None else tuple(c for c in enabled if c in channels)
        if not enabled:
            logger.warning(
                "No alert channel configured (set RECON_SLACK_WEBHOOK_URL, or RECON_SMTP_HOST "
                "and RECON_ALERT_TO); not sent: %s", alert.subject)
            return []
        delivered = []
        for channel in channels:
            try:
                self._within_timeout(self._post_slack if channel == SLACK else
                                     self._send_email, alert)
            except _DeliveryFailed as failure:
                logger.error("Alert channel %s failed (%s); not sent there: %s",
                             channel, failure, alert.subject)
            else:
                delivered.append(channel)
        return delivered

    def _within_timeout(self, deliver: Callable[[Alert], None], alert: Alert) -> None:
        """Run one channel's delivery in a worker thread; give up after the timeout."""
        failure: list[BaseException] = []

        def work() -> None:
            try:
                deliver(alert)
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=work, name="recon-assets-alert", daemon=True)
        worker.start()
        worker.join(self._timeout)
        if worker.is_alive():
            raise _DeliveryFailed(f"no answer within {self._timeout:g}s")
        if failure:
            raise failure[0]

    def _post_slack(self, alert: Alert) -> None:
        """POST to the webhook, retrying server errors and refused connections a few times."""
        url = self._settings.slack_webhook_url
        assert url is not None  # only called when the channel is enabled
        payload = to_slack_payload(alert)
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff * attempt)
            try:
                response = requests.post(url, json=payload, timeout=self._timeout)
            except requests.ConnectionError:
                problem = "connection failed"
                continue
            except requests.RequestException as exc:
                # A read timeout may have been delivered already: do not post twice.
                raise _DeliveryFailed(type(exc).__name__) from None
            if response.ok:
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500:
                break
        raise _DeliveryFailed(problem)

    def _send_email(self, alert: Alert) -> None:
        """Send over SMTP with STARTTLS when offered; credentials only ever over TLS."""
        s = self._settings
        assert s.smtp_host is not None  # only called when the channel is enabled
        sender = s.alert_from or s.smtp_user or "recon-assets@localhost"
        message = to_email(alert, sender, s.alert_to)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                encrypted = smtp.has_extn("starttls")
                if encrypted:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if s.smtp_user and s.smtp_password:
                    if not encrypted:
                        raise _DeliveryFailed(
                            "server offers no STARTTLS; refusing to send the password in clear")
                    smtp.login(s.smtp_user, s.smtp_password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            reason = redact(str(exc), self._secrets)
            raise _DeliveryFailed(f"{type(exc).__name__}: {reason}") from None


def sender_for(settings: Settings) -> AlertSender:
    """The sender of ``settings``' alert channels, scrubbing every secret in force."""
    return AlertSender(settings.alerts, redact=settings.secrets())
