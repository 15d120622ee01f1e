"""The wording of an alert: pure functions, no network."""

from __future__ import annotations

from recon_assets.alerts.messages import Alert, redact, to_email, to_slack_payload

ALERT = Alert(
    title="Asset check fifo_sizes_balance failed on fifo_allocations",
    severity="WARN",
    description="2 sells allocate more than they sold <check>",
    asset_key="fifo_allocations",
    check_name="fifo_sizes_balance",
    allocation_version="7",
    details=("failing_count: 2", "failing:", '  {"sell_order_id": "s-1"}'),
    run_id="abc-123",
)


def test_slack_payload_has_a_fallback_text_and_every_fact() -> None:
    payload = to_slack_payload(ALERT)

    assert payload["text"] == ("[recon-assets] WARN: Asset check fifo_sizes_balance failed on "
                               "fifo_allocations")
    header, description, facts, details = payload["blocks"]
    assert header["text"]["text"] == ALERT.title
    assert description["text"]["text"] == "2 sells allocate more than they sold &lt;check&gt;"
    shown = "\n".join(field["text"] for field in facts["fields"])
    for fact in ("WARN", "fifo_allocations", "fifo_sizes_balance", "7", "abc-123",
                 "/runs/abc-123", "/assets/fifo_allocations"):
        assert f"`{fact}`" in shown
    assert '"sell_order_id": "s-1"' in details["text"]["text"]


def test_unknown_facts_are_left_out() -> None:
    payload = to_slack_payload(Alert(title="Run of job failed", severity="ERROR",
                                     description="boom", run_id="r1"))

    labels = [field["text"].split("\n")[0] for field in payload["blocks"][2]["fields"]]
    assert labels == ["*Severity*", "*Run*", "*Run in Dagster UI*"]
    assert len(payload["blocks"]) == 3  # no details block


def test_slack_header_is_cut_to_what_slack_accepts() -> None:
    payload = to_slack_payload(Alert(title="x" * 400, severity="ERROR", description="d"))

    assert len(payload["blocks"][0]["text"]["text"]) == 150


def test_email_carries_the_same_facts() -> None:
    message = to_email(ALERT, "bot@example.com", ["a@example.com", "b@example.com"])

    assert message["Subject"] == to_slack_payload(ALERT)["text"]
    assert message["From"] == "bot@example.com"
    assert message["To"] == "a@example.com, b@example.com"
    body = message.get_content()
    for line in ("FIFO version: 7", "Run in Dagster UI: /runs/abc-123",
                 "Asset in Dagster UI: /assets/fifo_allocations", '  {"sell_order_id": "s-1"}'):
        assert line in body


def test_redacted_blanks_secrets_in_every_text_field() -> None:
    leaky = Alert(title="t hunter2", severity="ERROR", description="password=hunter2",
                  details=("url https://hooks.example/T/hunter2",))

    clean = leaky.redacted(["hunter2", ""])

    assert "hunter2" not in repr(clean)
    assert clean.description == "password=[redacted]"
    assert redact("no secret here", ["hunter2"]) == "no secret here"
