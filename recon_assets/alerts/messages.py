"""What an alert says, and how it is worded for Slack and e-mail.

Pure and Dagster-free: the sensor turns Dagster records into an :class:`Alert`, the sender
delivers it, and the wording lives here so both channels say the same thing and it can be
tested without a network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any, Iterable, Sequence

#: Slack rejects a header longer than 150 characters and a text block longer than 3000.
_SLACK_HEADER_LIMIT = 150
_SLACK_TEXT_LIMIT = 3000
_REDACTED = "[redacted]"


@dataclass(frozen=True)
class Alert:
    """One thing that went wrong, with enough context to act on it without opening Dagster.

    ``asset_key`` is the user-facing key (``a/b`` for a multi-part key); ``severity`` is the
    Dagster check severity (``ERROR`` or ``WARN``), ``ERROR`` for a failed run.
    """

    title: str
    severity: str
    description: str
    asset_key: str | None = None
    check_name: str | None = None
    allocation_version: str | None = None
    details: tuple[str, ...] = ()
    run_id: str | None = None

    @property
    def run_path(self) -> str | None:
        """Where the run is in the Dagster UI, relative to the UI's base URL."""
        return f"/runs/{self.run_id}" if self.run_id else None

    @property
    def asset_path(self) -> str | None:
        """Where the asset (and its checks) is in the Dagster UI, relative to its base URL."""
        return f"/assets/{self.asset_key}" if self.asset_key else None

    @property
    def subject(self) -> str:
        """One line that says what happened, for an e-mail subject or a notification."""
        return f"[recon-assets] {self.severity}: {self.title}"

    def redacted(self, secrets: Iterable[str]) -> Alert:
        """A copy with every secret value blanked out of its text.

        Descriptions and details come from check metadata and error messages, which nothing
        guarantees to be secret-free; the sender scrubs them before anything leaves the host.
        """
        values = tuple(secrets)
        return replace(
            self,
            title=redact(self.title, values),
            description=redact(self.description, values),
            details=tuple(redact(d, values) for d in self.details),
        )


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every (non-empty) secret value replaced by a marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _facts(alert: Alert) -> list[tuple[str, str]]:
    """The labelled facts both channels show, in a fixed order, skipping unknown ones."""
    rows = [
        ("Severity", alert.severity),
        ("Asset", alert.asset_key),
        ("Check", alert.check_name),
        ("FIFO version", alert.allocation_version),
        ("Run", alert.run_id),
        ("Run in Dagster UI", alert.run_path),
        ("Asset in Dagster UI", alert.asset_path),
    ]
    return [(label, value) for label, value in rows if value]


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape_mrkdwn(text: str) -> str:
    """Slack mrkdwn treats ``&``, ``<`` and ``>`` as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_slack_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body of a Slack incoming-webhook message.

    ``text`` is the fallback shown in notifications; ``blocks`` carry the full layout.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header",
         "text": {"type": "plain_text", "text": _truncate(alert.title, _SLACK_HEADER_LIMIT)}},
        {"type": "section",
         "text": {"type": "mrkdwn",
                  "text": _truncate(_escape_mrkdwn(alert.description), _SLACK_TEXT_LIMIT)}},
        {"type": "section",
         "fields": [{"type": "mrkdwn", "text": f"*{label}*\n`{_escape_mrkdwn(value)}`"}
                    for label, value in _facts(alert)]},
    ]
    if alert.details:
        body = _truncate(_escape_mrkdwn("\n".join(alert.details)), _SLACK_TEXT_LIMIT - 8)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```\n{body}\n```"}})
    return {"text": alert.subject, "blocks": blocks}


def to_email(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """A plain-text e-mail carrying the same facts as the Slack message."""
    lines = [alert.title, "", alert.description, ""]
    lines += [f"{label}: {value}" for label, value in _facts(alert)]
    if alert.details:
        lines += ["", "Details:"] + [f"  {detail}" for detail in alert.details]
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content("\n".join(lines) + "\n")
    return message
