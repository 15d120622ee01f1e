"""A new FIFO version is announced on the alert channels with its PnL delta, by a sensor
reading fifo_version_diff's materializations (the asset itself sends nothing)."""

from decimal import Decimal

import dagster as dg

from recon_assets.alerts.announcements import build_announcement_sensor
from recon_assets.alerts.senders import sender_for
from recon_assets.cli import main
from recon_assets.settings import load_settings
from recon_assets_tests.automation.test_sensors_and_schedules import order
from recon_assets_tests.conftest import seed_trade_records


def _tick(sensor, cursor):
    with dg.DagsterInstance.get() as instance:
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    return result.cursor


def test_new_version_announces_pnl_delta_once(sqlite_url, webhook, monkeypatch, tmp_path,
                                              capsys):
    seed_trade_records(sqlite_url, [order("b1", "buy", 1, "1", "100"),
                                    order("s1", "sell", 3, "2", "110")])
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    monkeypatch.setenv("RECON_SLACK_WEBHOOK_URL", webhook.url)
    (tmp_path / "dh").mkdir()
    sensor = build_announcement_sensor(lambda: sender_for(load_settings()))
    main(["fifo", "-q"])
    cursor = _tick(sensor, None)  # the first tick starts watching
    cursor = _tick(sensor, cursor)
    assert webhook.posts == []  # the first version has nothing to compare with
    seed_trade_records(sqlite_url, [order("b0", "buy", 2, "1", "90")])
    main(["fifo", "-q"])
    assert webhook.posts == []  # the run itself announces nothing
    cursor = _tick(sensor, cursor)
    assert len(webhook.posts) == 1
    text = str(webhook.posts[0])
    assert "FIFO version 2" in text and f"delta {Decimal('20')}" in text
    main(["diff-versions", "-q"])  # the same version's diff again: not announced twice
    cursor = _tick(sensor, cursor)
    capsys.readouterr()
    assert len(webhook.posts) == 1
