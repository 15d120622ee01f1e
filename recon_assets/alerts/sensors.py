"""A sensor that alerts on failed asset checks and failed runs.

Dagster OSS has no built-in alert for a failed check, and ``instance.get_event_records`` with a
cursor raises on the default run-sharded SQLite storage, so this polls the asset-check
execution rows (one per evaluation, on every storage) and the run status changes Dagster
mirrors into the index shard. Its JSON cursor makes each failure reach each channel once::

    {"checks": {"<asset>:<check>": {"after": <row id>, "seen": [<row ids above after>]}},
     "runs_after": <storage id>, "runs_seen": [<storage ids above runs_after>],
     "owed": {"<alert key>": ["<channel>", ...]}}

A check row is written PLANNED when its run starts and updated in place when evaluated; runs
can finish out of order, so handled rows above ``after`` wait in ``seen`` until all rows below
them are handled (run failures likewise). A check met for the first time alerts only if its
latest evaluation failed (its state, not its history); run failures are watched from the
first tick on. Delivery is per channel: an alert is handled once every configured channel
took it; ``owed`` lists the channels that have not yet, which are retried next tick (and only
they: a channel that took it never gets it twice). A channel that fails is not tried again
for other alerts in the same tick, so one hung webhook costs a tick one timeout, not one per
alert.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from dagster import (
    AssetCheckKey,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    EventLogEntry,
    JsonMetadataValue,
    MetadataValue,
    RunStatusChangeRecordsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    TableMetadataValue,
    sensor,
)

#: An asset-check execution row as ``event_log_storage.get_asset_check_execution_history``
#: returns it; its class is not part of Dagster's public API, so only its public fields
#: (``id``, ``run_id``, ``status``, ``evaluation``) are used.
AssetCheckExecutionRecord = Any

from recon_assets.alerts.messages import Alert
from recon_assets.alerts.senders import AlertSender

_VERSION_KEYS = ("allocation_version", "version")
_HISTORY_LIMIT = 100  # check rows read per check and tick
_RUN_FETCH_LIMIT = 50  # run failures handled per tick; the rest wait for the next tick
_MAX_DETAILS = 16
_MAX_ROWS = 5
_MAX_VALUE_CHARS = 200


class Delivery:
    """Builds the sender on first use (so quiet ticks never read settings), delivers per
    channel against the cursor's ``owed`` state, and keeps score."""

    def __init__(self, factory: Callable[[], AlertSender], owed: dict[str, list[str]]) -> None:
        self._factory = factory
        self._sender: AlertSender | None = None
        #: alert key -> channels that have not taken that alert yet
        self.owed = dict(owed)
        self._down: set[str] = set()  # channels that failed this tick
        self.sent: list[str] = []
        self.undelivered = 0

    def __call__(self, key: str, alert: Alert) -> bool:
        """Send ``alert`` (known by ``key``) where it is still owed; True when no configured
        channel still needs it."""
        if self._sender is None:
            self._sender = self._factory()
        enabled = self._sender.enabled_channels
        targets = [c for c in self.owed.get(key, enabled) if c in enabled]
        trying = [c for c in targets if c not in self._down]
        delivered = self._sender.send(alert, trying) if trying or not enabled else []
        self._down.update(c for c in trying if c not in delivered)
        left = [c for c in targets if c not in delivered]
        if left:
            self.owed[key] = left
            self.undelivered += 1
            return False
        self.owed.pop(key, None)
        self.sent.append(f"{alert.asset_key}:{alert.check_name} ({alert.severity})"
                         if alert.check_name else f"run {alert.run_id}")
        return True

    def summary(self, watched: int) -> str:
        """The tick's one-line skip reason, shown in the Dagster UI."""
        if self._sender is None:
            return f"No new failures ({watched} checks and failed runs watched)"
        text = f"Alerted {len(self.sent)}: {', '.join(self.sent) or '-'}"
        if not self._sender.enabled_channels:
            text += " (no alert channel configured: logged only)"
        if self.undelivered:
            down = f" ({', '.join(sorted(self._down))} failed)" if self._down else ""
            text += f"; {self.undelivered} not delivered, retrying next tick{down}"
        return text


def _rows(value: MetadataValue) -> list[str] | None:
    """The rows of a table, JSON list or multi-line text entry; None for a one-line value."""
    if isinstance(value, TableMetadataValue):
        return [", ".join(f"{k}={v}" for k, v in r.data.items()) for r in value.records]
    if isinstance(value, JsonMetadataValue) and isinstance(value.data, list):
        return [json.dumps(item, default=str) for item in value.data]
    if isinstance(value.value, str) and "\n" in value.value.strip():
        return value.value.strip().splitlines()  # e.g. a Markdown table
    return None


def _details(partition: str | None, metadata: dict[str, MetadataValue]) -> tuple[str, ...]:
    """A few readable lines from check metadata: one-line values first, then the first rows."""
    lines = [f"partition: {partition}"] if partition else []
    blocks: list[str] = []
    for label, value in metadata.items():
        rows = _rows(value)
        if rows is None:
            lines.append(f"{label}: {str(value.value)[:_MAX_VALUE_CHARS]}")
            continue
        blocks += [f"{label}:"] + [f"  {r[:_MAX_VALUE_CHARS]}" for r in rows[:_MAX_ROWS]]
        blocks += [f"  ... {len(rows) - _MAX_ROWS} more"] if len(rows) > _MAX_ROWS else []
    lines += blocks
    if len(lines) > _MAX_DETAILS:
        lines = lines[:_MAX_DETAILS - 1] + ["... (more in the Dagster UI)"]
    return tuple(lines)


def _check_alert(record: AssetCheckExecutionRecord) -> Alert:
    evaluation = record.evaluation
    assert evaluation is not None  # FAILED rows always carry their evaluation
    metadata = dict(evaluation.metadata)
    version = next((str(metadata.pop(k).value) for k in _VERSION_KEYS if k in metadata), None)
    asset = evaluation.asset_key.to_user_string()
    return Alert(
        title=f"Asset check {evaluation.check_name} failed on {asset}",
        severity=evaluation.severity.value,
        description=evaluation.description or "The check did not pass (no description given).",
        asset_key=asset,
        check_name=evaluation.check_name,
        allocation_version=version,
        details=_details(evaluation.partition, metadata),
        run_id=record.run_id,
    )


def _run_alert(instance: DagsterInstance, entry: EventLogEntry) -> Alert:
    details = []
    run = instance.get_run_by_id(entry.run_id)
    if run is not None and run.asset_selection:
        assets = sorted(k.to_user_string() for k in run.asset_selection)
        details.append(f"assets: {', '.join(assets)}")
    if run is not None and run.tags.get("dagster/partition"):
        details.append(f"partition: {run.tags['dagster/partition']}")
    data = entry.dagster_event.event_specific_data if entry.dagster_event else None
    error = getattr(data, "error", None)  # a run failure's data carries the error
    while error is not None and error.cause is not None:
        error = error.cause  # the root cause says what actually broke
    if error is not None:
        details += error.message.strip().splitlines()[:_MAX_ROWS]
    return Alert(
        title=f"Run of {entry.job_name} failed",
        severity="ERROR",
        description=entry.message or "The run failed.",
        details=tuple(details),
        run_id=entry.run_id,
    )


def _status(record: AssetCheckExecutionRecord) -> str:
    """PLANNED, SUCCEEDED, FAILED, ... (compared by value: the enum is not public)."""
    return str(record.status.value)


def _run_is_over(instance: DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def _records_after(instance: DagsterInstance, key: AssetCheckKey,
                   after: int) -> list[AssetCheckExecutionRecord]:
    history = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=_HISTORY_LIMIT)
    return sorted((r for r in history if r.id > after), key=lambda r: r.id)


def _alert_check(instance: DagsterInstance, key: AssetCheckKey, state: dict[str, Any] | None,
                 deliver: Delivery) -> dict[str, Any]:
    """Alert each new failed evaluation of one check; return its new cursor entry."""
    latest = instance.get_latest_asset_check_evaluation_record(key)
    if latest is None:  # never evaluated: every evaluation from now on is new
        return state or {"after": 0, "seen": []}
    if state is not None and latest.id <= state["after"]:
        return state
    after, seen = (latest.id - 1, set()) if state is None else (state["after"], set(state["seen"]))
    records = _records_after(instance, key, after)
    # A run writes its evaluations before it ends, so a row still PLANNED when read after its
    # run was seen over will never be evaluated (skipped, or the run failed: alerted as such).
    over = {r.run_id for r in records if _status(r) == "PLANNED"
            and _run_is_over(instance, r.run_id)}
    if over:
        records = _records_after(instance, key, after)
    for record in records:
        if record.id in seen:
            continue
        if _status(record) == "PLANNED":
            if record.run_id in over:  # otherwise still running: wait
                seen.add(record.id)
        elif (_status(record) == "SUCCEEDED"
              or deliver(f"check:{record.id}", _check_alert(record))):
            seen.add(record.id)
    for record in records:
        if record.id not in seen:
            break
        after = record.id
        seen.remove(record.id)
    return {"after": after, "seen": sorted(seen)}


def _alert_runs(instance: DagsterInstance, after: int | None, seen: list[int],
                deliver: Delivery) -> tuple[int, list[int]]:
    """Alert each run that failed after ``after``; return the new ``after`` and ``seen``."""
    if after is None:  # first tick: watch from now on rather than replay old failures
        latest = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=1).records
        return (latest[0].storage_id if latest else 0), []
    records = instance.fetch_run_status_changes(
        RunStatusChangeRecordsFilter(event_type=DagsterEventType.RUN_FAILURE,
                                     after_storage_id=after),
        limit=_RUN_FETCH_LIMIT, ascending=True).records
    handled = set(seen)
    for record in records:
        if record.storage_id not in handled and deliver(
                f"run:{record.storage_id}", _run_alert(instance, record.event_log_entry)):
            handled.add(record.storage_id)
    for record in records:
        if record.storage_id not in handled:
            break
        after = record.storage_id
        handled.remove(record.storage_id)
    return after, sorted(handled)


def build_check_alert_sensor(
    sender_factory: Callable[[], AlertSender],
    name: str = "check_failure_alert_sensor",
    minimum_interval_seconds: int = 30,
) -> SensorDefinition:
    """A sensor alerting once per failed check evaluation (ERROR or WARN) and per failed run.

    It reads the checks of the repository it is deployed in, so add it to the same
    ``Definitions`` as the asset checks. ``sender_factory`` is called at tick time, only when
    there is something to send; the definitions pass :func:`sender_for` over the settings
    they were built from, so the sensor itself reads no configuration.
    """
    factory = sender_factory

    @sensor(name=name, minimum_interval_seconds=minimum_interval_seconds,
            default_status=DefaultSensorStatus.RUNNING,
            description="Sends Slack/e-mail alerts for failed asset checks and failed runs.")
    def _check_alert_sensor(context: SensorEvaluationContext) -> SensorResult:
        if context.repository_def is None:
            raise ValueError(f"{name} needs its repository's asset checks: add it to Definitions")
        cursor = json.loads(context.cursor) if context.cursor else {}
        checks: dict[str, Any] = cursor.get("checks", {})
        deliver = Delivery(factory, cursor.get("owed", {}))
        check_keys = sorted(context.repository_def.asset_graph.asset_check_keys,
                            key=lambda k: k.to_user_string())
        for key in check_keys:
            label = key.to_user_string()
            checks[label] = _alert_check(context.instance, key, checks.get(label), deliver)
        runs_after, runs_seen = _alert_runs(context.instance, cursor.get("runs_after"),
                                            cursor.get("runs_seen", []), deliver)
        new_cursor = json.dumps({"checks": checks, "runs_after": runs_after,
                                 "runs_seen": runs_seen, "owed": deliver.owed}, sort_keys=True)
        return SensorResult(skip_reason=deliver.summary(len(check_keys)), cursor=new_cursor)

    return _check_alert_sensor
