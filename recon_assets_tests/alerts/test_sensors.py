"""The alert sensor on a real Dagster instance, alerting to a real local webhook and SMTP server."""

from __future__ import annotations

import json
from typing import Iterator

import dagster as dg
import pytest
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationPlanned,
)
from dagster._core.events import DagsterEvent
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from recon_assets.alerts.senders import AlertSender
from recon_assets.alerts.senders import sender_for
from recon_assets.alerts.sensors import build_check_alert_sensor
from recon_assets.settings import load_settings
from recon_assets.settings import AlertSettings
from recon_assets_tests.alerts.conftest import WEBHOOK_SECRET_PATH, SmtpServer, Webhook


@dg.asset
def toy_ledger() -> int:
    return 1


@dg.asset_check(asset=toy_ledger)
def check_toy_ledger_balanced() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False, description="2 sells allocate more than they sold",
        metadata={"allocation_version": 3, "failing_count": 2,
                  "failing": dg.MetadataValue.json([{"sell_order_id": "s-1"},
                                                    {"sell_order_id": "s-2"}])})


@dg.asset_check(asset=toy_ledger)
def check_toy_ledger_recent() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                               description="no order in 3 days", metadata={"version": "9"})


@dg.asset_check(asset=toy_ledger)
def check_toy_ledger_nonempty() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset
def toy_broken() -> None:
    raise ValueError("exchange said no")


CHECKS = [check_toy_ledger_balanced, check_toy_ledger_recent, check_toy_ledger_nonempty]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


class Ticker:
    """Ticks the sensor like the daemon does, carrying the cursor from tick to tick."""

    def __init__(self, instance: dg.DagsterInstance, settings: AlertSettings | None,
                 **sender_options: float) -> None:
        factory = (lambda: sender_for(load_settings())) if settings is None else (
            lambda: AlertSender(settings, retry_backoff_seconds=0, **sender_options))
        self.sensor = build_check_alert_sensor(sender_factory=factory)
        self.defs = dg.Definitions(assets=[toy_ledger, toy_broken], asset_checks=CHECKS,
                                   sensors=[self.sensor])
        self.instance = instance
        self.cursor: str | None = None
        self.skip_message: str | None = None

    def tick(self) -> None:
        context = dg.build_sensor_context(instance=self.instance, definitions=self.defs,
                                          cursor=self.cursor)
        result = self.sensor.evaluate_tick(context)
        assert result.run_requests == []
        self.cursor, self.skip_message = result.cursor, result.skip_message


def _materialize(instance: dg.DagsterInstance, *checks: dg.AssetChecksDefinition) -> str:
    return dg.materialize([toy_ledger, *checks], instance=instance).run_id


@pytest.fixture
def ticker(instance: dg.DagsterInstance, webhook: Webhook, smtp_server: SmtpServer) -> Ticker:
    return Ticker(instance, AlertSettings(
        slack_webhook_url=webhook.url, smtp_host=smtp_server.host, smtp_port=smtp_server.port,
        alert_from="recon@example.com", alert_to=("ops@example.com",)))


def test_definitions_with_the_sensor_load(ticker: Ticker) -> None:
    dg.Definitions.validate_loadable(ticker.defs)
    assert ticker.sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert ticker.sensor.name == "check_failure_alert_sensor"


def test_a_failed_check_alerts_exactly_once_per_failure(
        ticker: Ticker, webhook: Webhook, smtp_server: SmtpServer) -> None:
    run_id = _materialize(ticker.instance, check_toy_ledger_balanced)

    ticker.tick()
    [post] = webhook.posts
    [email] = smtp_server.inbox.messages
    assert post["text"] == ("[recon-assets] ERROR: Asset check check_toy_ledger_balanced "
                            "failed on toy_ledger")
    text = json.dumps(post)
    for expected in ("2 sells allocate more than they sold", "`3`", f"/runs/{run_id}",
                     "/assets/toy_ledger", "sell_order_id", "failing_count: 2"):
        assert expected in text
    assert email["Subject"] == post["text"]
    assert "FIFO version: 3" in email.get_content()
    assert "toy_ledger:check_toy_ledger_balanced (ERROR)" in ticker.skip_message

    ticker.tick()
    assert len(webhook.posts) == 1 and len(smtp_server.inbox.messages) == 1
    assert ticker.skip_message.startswith("No new failures")

    _materialize(ticker.instance, check_toy_ledger_balanced)
    ticker.tick()
    assert len(webhook.posts) == 2 and len(smtp_server.inbox.messages) == 2
    for secret_part in (WEBHOOK_SECRET_PATH, "T0SECRET"):
        assert secret_part not in ticker.cursor + ticker.skip_message + json.dumps(webhook.posts)


def test_a_warning_alerts_with_its_severity(ticker: Ticker, webhook: Webhook) -> None:
    _materialize(ticker.instance, check_toy_ledger_recent)

    ticker.tick()

    [post] = webhook.posts
    assert post["text"].startswith("[recon-assets] WARN: Asset check check_toy_ledger_recent")
    assert "`9`" in json.dumps(post)  # the version, from the "version" metadata key


def test_a_passing_check_never_alerts(ticker: Ticker, webhook: Webhook,
                                      smtp_server: SmtpServer) -> None:
    _materialize(ticker.instance, check_toy_ledger_nonempty)
    ticker.tick()
    _materialize(ticker.instance, check_toy_ledger_nonempty)
    ticker.tick()

    assert webhook.posts == [] and smtp_server.inbox.messages == []
    assert ticker.skip_message == "No new failures (3 checks and failed runs watched)"


def test_every_failure_between_two_ticks_alerts(ticker: Ticker, webhook: Webhook) -> None:
    ticker.tick()
    first = _materialize(ticker.instance, check_toy_ledger_balanced)
    second = _materialize(ticker.instance, check_toy_ledger_balanced, check_toy_ledger_nonempty)

    ticker.tick()

    assert [p["text"].split(": ")[0] for p in webhook.posts] == ["[recon-assets] ERROR"] * 2
    assert f"/runs/{first}" in json.dumps(webhook.posts[0])
    assert f"/runs/{second}" in json.dumps(webhook.posts[1])


def test_a_failed_run_alerts_once(ticker: Ticker, webhook: Webhook) -> None:
    ticker.tick()  # run failures are watched from the first tick on
    result = dg.materialize([toy_broken], instance=ticker.instance, raise_on_error=False)
    assert not result.success

    ticker.tick()
    [post] = webhook.posts
    assert post["text"].startswith("[recon-assets] ERROR: Run of")
    text = json.dumps(post)
    assert "ValueError: exchange said no" in text and f"/runs/{result.run_id}" in text

    ticker.tick()
    assert len(webhook.posts) == 1


def test_an_alert_no_channel_took_is_retried_next_tick(instance: dg.DagsterInstance,
                                                       webhook: Webhook) -> None:
    ticker = Ticker(instance, AlertSettings(slack_webhook_url=webhook.url))
    webhook.statuses = [500, 500, 500]
    _materialize(instance, check_toy_ledger_balanced)

    ticker.tick()
    assert "1 not delivered, retrying next tick" in ticker.skip_message
    ticker.tick()
    ticker.tick()

    assert len(webhook.posts) == 4  # three refused attempts, then the one delivered
    assert ticker.skip_message.startswith("No new failures")


def _plan(instance: dg.DagsterInstance) -> str:
    """What a run does when it starts: a PLANNED row for the check."""
    run = instance.add_run(DagsterRun(job_name="toy_job", status=DagsterRunStatus.STARTED))
    planned = AssetCheckEvaluationPlanned(asset_key=toy_ledger.key,
                                          check_name="check_toy_ledger_balanced")
    instance.report_dagster_event(DagsterEvent(
        dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value, "toy_job",
        event_specific_data=planned), run_id=run.run_id)
    return run.run_id


def _fail(instance: dg.DagsterInstance, run_id: str) -> None:
    evaluation = dg.AssetCheckEvaluation(asset_key=toy_ledger.key,
                                         check_name="check_toy_ledger_balanced", passed=False)
    instance.report_dagster_event(DagsterEvent(
        dg.DagsterEventType.ASSET_CHECK_EVALUATION.value, "toy_job",
        event_specific_data=evaluation), run_id=run_id)


def test_concurrent_runs_finishing_out_of_order_each_alert(ticker: Ticker,
                                                          webhook: Webhook) -> None:
    ticker.tick()  # the sensor runs before the runs start
    slow, fast = _plan(ticker.instance), _plan(ticker.instance)
    ticker.tick()  # both still running
    _fail(ticker.instance, fast)
    ticker.tick()
    _fail(ticker.instance, slow)
    ticker.tick()
    ticker.tick()

    assert [f"/runs/{fast}" in json.dumps(p) for p in webhook.posts] == [True, False]
    assert [f"/runs/{slow}" in json.dumps(p) for p in webhook.posts] == [False, True]


def test_the_definitions_sensor_sends_to_the_channels_chosen_when_they_were_built(
        instance: dg.DagsterInstance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sensor reads no configuration: the definitions hand it the channels of the
    settings they were built from (a variable changed later reaches the next load)."""
    from recon_assets.definitions import build_definitions

    monkeypatch.setenv("RECON_SLACK_WEBHOOK_URL", webhook.url)
    sensor = build_definitions(load_settings()).get_sensor_def("check_failure_alert_sensor")
    monkeypatch.delenv("RECON_SLACK_WEBHOOK_URL")
    defs = dg.Definitions(assets=[toy_ledger, toy_broken], asset_checks=CHECKS, sensors=[sensor])
    cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs)
                                  ).cursor
    _materialize(instance, check_toy_ledger_balanced)
    sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs,
                                                 cursor=cursor))
    assert len(webhook.posts) == 1


def test_a_check_its_failed_run_never_evaluated_alerts_only_as_the_run(ticker: Ticker,
                                                                      webhook: Webhook) -> None:
    ticker.tick()
    dead = _plan(ticker.instance)
    ticker.instance.report_run_failed(ticker.instance.get_run_by_id(dead))
    ticker.tick()
    later = _plan(ticker.instance)
    _fail(ticker.instance, later)
    ticker.tick()
    ticker.tick()

    assert [p["text"] for p in webhook.posts] == [
        "[recon-assets] ERROR: Run of toy_job failed",
        "[recon-assets] ERROR: Asset check check_toy_ledger_balanced failed on toy_ledger"]
    assert f"/runs/{later}" in json.dumps(webhook.posts[1])
    state = json.loads(ticker.cursor)["checks"]["toy_ledger:check_toy_ledger_balanced"]
    assert state["seen"] == []  # the row its run never evaluated does not hold the cursor back


def test_without_channels_failures_are_logged_once_and_not_retried(
        instance: dg.DagsterInstance, caplog: pytest.LogCaptureFixture) -> None:
    ticker = Ticker(instance, AlertSettings())
    _materialize(instance, check_toy_ledger_balanced)

    ticker.tick()
    assert ticker.skip_message.endswith("(no alert channel configured: logged only)")
    ticker.tick()

    assert ticker.skip_message.startswith("No new failures")
    assert caplog.text.count("No alert channel configured") == 1
