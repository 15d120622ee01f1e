"""Schedules and the ledger sensor, evaluated with Dagster's test contexts on a real instance
and a real ledger."""

from datetime import datetime, timezone
from decimal import Decimal

import dagster as dg
import pytest
from sqlalchemy import text

from recon_assets.automation.schedules import build_schedules
from recon_assets.automation.sensors import ledger_change_sensor
from recon_assets.fifo.reports import daily_pnl
from recon_assets.fifo.service import compute_version
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import load_settings
from recon_assets_tests.conftest import seed_trade_records


def order(order_id, side, day, size, price, fee="0"):
    return {"order_id": order_id, "symbol": "BTC-USD", "side": side,
            "order_time": datetime(2026, 1, day, tzinfo=timezone.utc),
            "size": Decimal(size), "price": Decimal(price), "total_fees_usd": Decimal(fee)}


def tick(instance, url, cursor):
    """One evaluation: the run request (or the skip reason) and the new cursor. Every tick,
    skipped or not, observes trade_records with the ledger fingerprint as data version."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"ledger": LedgerResource(database_url=url)})
    result = ledger_change_sensor(context)
    fingerprint = str(LedgerStore(url).fingerprint())
    cursor = result.cursor if result.cursor is not None else cursor
    [observed] = result.asset_events
    assert observed.asset_key == dg.AssetKey("trade_records")
    assert observed.tags["dagster/data_version"] == fingerprint
    if result.run_requests:
        [request] = result.run_requests
        [added] = result.dynamic_partitions_requests
        assert (added.partitions_def_name, list(added.partition_keys)) == (
            "fifo_versions", [request.partition_key])
        return request, cursor
    return result.skip_reason, cursor


def test_ledger_sensor_requests_one_recompute_per_change(ledger_url):
    seed_trade_records(ledger_url, [order("b1", "buy", 1, "1", "100"),
                                    order("s1", "sell", 2, "2", "110")])
    with dg.instance_for_test() as instance:
        result, cursor = tick(instance, ledger_url, None)
        assert isinstance(result, dg.RunRequest) and result.partition_key == "1"
        again, cursor = tick(instance, ledger_url, cursor)
        assert isinstance(again, dg.SkipReason)

        seed_trade_records(ledger_url, [order("b0", "buy", 1, "1", "90")])
        changed, cursor = tick(instance, ledger_url, cursor)
        assert isinstance(changed, dg.RunRequest) and changed.run_key != result.run_key
        assert isinstance(tick(instance, ledger_url, cursor)[0], dg.SkipReason)

        compute_version(LedgerStore(ledger_url))
        fresh, _ = tick(instance, ledger_url, None)
        assert isinstance(fresh, dg.SkipReason) and "already reflects" in fresh.skip_message


def test_ledger_sensor_sees_an_order_corrected_in_place(ledger_url):
    """No row added or removed: the bot fixed a size. The version no longer reflects the
    ledger, so the sensor must ask for a recompute."""
    seed_trade_records(ledger_url, [order("b1", "buy", 1, "1", "100"),
                                    order("s1", "sell", 2, "1", "110")])
    compute_version(LedgerStore(ledger_url))
    with dg.instance_for_test() as instance:
        skipped, cursor = tick(instance, ledger_url, None)
        assert isinstance(skipped, dg.SkipReason)
        store = LedgerStore(ledger_url)
        with store.begin() as conn:
            conn.execute(text("UPDATE trade_records SET size = '0.5' WHERE order_id = 's1'"))
        changed, _ = tick(instance, ledger_url, cursor)
        assert isinstance(changed, dg.RunRequest), changed


def test_weekly_schedule_cron_timezone_and_config(monkeypatch):
    monkeypatch.setenv("RECON_SCHEDULE_TIMEZONE", "Europe/Berlin")
    weekly, daily, pnl = build_schedules(load_settings())
    assert weekly.cron_schedule == "15 9 * * 0" and weekly.execution_timezone == "Europe/Berlin"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 29, 9, 15, tzinfo=timezone.utc))
    request = weekly.evaluate_tick(context).run_requests[0]
    assert not request.run_config  # the job's own defaults are what the schedule runs
    from recon_assets.automation.jobs import weekly_reconciliation_job
    assert weekly_reconciliation_job.config["ops"]["missing_orders"]["config"]["tier"] == "2"
    assert daily.job_name == "validate_job" and daily.cron_schedule == "10 9 * * *"
    assert pnl.job_name == "daily_pnl_job" and pnl.cron_schedule == "5 9 * * *"


def test_weekly_cron_is_configurable(monkeypatch):
    monkeypatch.setenv("RECON_WEEKLY_CRON", "0 7 * * 1")
    monkeypatch.setenv("RECON_DAILY_VALIDATION_CRON", "0 6 * * *")
    monkeypatch.setenv("RECON_DAILY_PNL_CRON", "30 8 * * *")
    assert [s.cron_schedule for s in build_schedules(load_settings())] == [
        "0 7 * * 1", "0 6 * * *", "30 8 * * *"]


def test_daily_schedules_run_the_latest_version_partition(sqlite_url):
    seed_trade_records(sqlite_url, [order("b1", "buy", 1, "1", "100"),
                                    order("s1", "sell", 2, "1", "110")])
    from recon_assets.definitions import defs

    _, daily, pnl = build_schedules(load_settings())
    repository = defs.get_repository_def()
    resources = {"ledger": LedgerResource(database_url=sqlite_url)}
    when = datetime(2026, 11, 30, 9, 10, tzinfo=timezone.utc)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("fifo_versions", ["1", "2"])
        for schedule, expected in ((daily, None), (daily, "2"), (pnl, "2")):
            if expected and schedule is daily:
                compute_version(LedgerStore(sqlite_url))
                compute_version(LedgerStore(sqlite_url))
            with dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                           resources=resources,
                                           repository_def=repository) as ctx:
                result = schedule.evaluate_tick(ctx)
            if expected is None:
                assert "no FIFO version" in result.skip_message
            else:
                assert [r.partition_key for r in result.run_requests] == [expected]


@pytest.mark.parametrize("only_if_changed, expected", [(True, 1), (False, 2)])
def test_weekly_fifo_reuses_the_version_when_the_ledger_did_not_change(
        sqlite_url, only_if_changed, expected):
    seed_trade_records(sqlite_url, [order("b1", "buy", 1, "1", "100"),
                                    order("s1", "sell", 2, "1", "110")])
    store = LedgerStore(sqlite_url)
    compute_version(store)
    summary = compute_version(store, only_if_changed=only_if_changed)
    assert summary.version == expected and summary.reused is only_if_changed


def test_daily_pnl_per_symbol_and_day(sqlite_url):
    seed_trade_records(sqlite_url, [order("b1", "buy", 1, "2", "100", "1"),
                                    order("s1", "sell", 2, "1", "110"),
                                    order("s2", "sell", 3, "1", "120", "0.5")])
    store = LedgerStore(sqlite_url)
    summary = compute_version(store)
    from recon_assets.ledger import versions

    with store.connect() as conn:
        report = daily_pnl(versions.read_allocations(conn, summary.version))
    assert report["realized_pnl_usd"].tolist() == [Decimal("9.50000000"), Decimal("19.00000000")]
    assert sum(report["realized_pnl_usd"]) == summary.total_pnl_usd
