"""ExchangeResource: built once from the settings; credentials are environment variable
references resolved at run time, never values in the definitions the UI shows."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from recon_assets.errors import ConfigError
from recon_assets.exchange.client import DEFAULT_REQUESTS_PER_SECOND
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.resources import ExchangeResource
from recon_assets.exchange.simulator import Simulator, create_ec_key_file
from recon_assets.settings import load_settings


def resolved_exchange(**tuning) -> ExchangeResource:
    """The resource the definitions build from the current settings, resolved as a run does."""
    return ExchangeResource.from_settings(load_settings(), **tuning).process_config_and_initialize()


def test_secrets_are_environment_variable_references(tmp_path, monkeypatch):
    """What the UI shows of the resource is the variable's name; the run gets the value."""
    create_ec_key_file(tmp_path / "cdp.json")
    key = json.loads((tmp_path / "cdp.json").read_text())
    monkeypatch.setenv("COINBASE_API_KEY", key["name"])
    monkeypatch.setenv("COINBASE_API_SECRET", key["privateKey"])
    resource = ExchangeResource.from_settings(load_settings())
    assert resource.mode == "coinbase"
    assert (resource.api_key, resource.api_secret) == ("COINBASE_API_KEY", "COINBASE_API_SECRET")
    assert key["privateKey"] not in repr(resource) and key["privateKey"] not in str(
        resource.model_dump())
    assert resource.process_config_and_initialize().api_secret == key["privateKey"]


def test_url_mode_comes_from_the_settings(tmp_path, monkeypatch):
    fills = demo_history().fills[:7]
    with Simulator(fills, tmp_path / "key.json") as sim:
        monkeypatch.setenv("RECON_EXCHANGE_URL", sim.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(sim.key_file))
        client = resolved_exchange(requests_per_second=200).get_client()
        assert client.origin == sim.url
        assert sum(len(page) for page in client.iter_fills()) == 7


def test_coinbase_mode_targets_the_real_api_over_tls(tmp_path, monkeypatch):
    create_ec_key_file(tmp_path / "cdp.json")
    key = json.loads((tmp_path / "cdp.json").read_text())
    monkeypatch.setenv("COINBASE_KEY_FILE", str(tmp_path / "cdp.json"))
    assert resolved_exchange().get_client().origin == "https://api.coinbase.com"
    monkeypatch.setenv("COINBASE_API_KEY", key["name"])
    monkeypatch.setenv("COINBASE_API_SECRET", key["privateKey"])
    with pytest.raises(ConfigError, match="not both"):
        resolved_exchange().get_client()
    monkeypatch.delenv("COINBASE_KEY_FILE")
    assert resolved_exchange().get_client().origin == "https://api.coinbase.com"


def test_embedded_mode_starts_one_demo_simulator(tmp_path):
    resource = resolved_exchange()
    with ThreadPoolExecutor(4) as pool:
        clients = list(pool.map(lambda _: resource.get_client(), range(4)))
    assert len({c.origin for c in clients}) == 1
    key_file = Path("recon_home/simulator/key.json").resolve()
    assert set(json.loads(key_file.read_text())) == {"name", "privateKey"}
    fetched = sum(len(page) for page in clients[0].iter_fills())
    assert fetched == len(demo_history().fills)


def _seconds_for_requests(monkeypatch, tmp_path, requests: int) -> float:
    """Time the resource's client takes for ``requests`` one-fill pages from a simulator
    that answers at once (so the client's pacing is all that spaces them)."""
    with Simulator(demo_history().fills[:requests], tmp_path / "key.json") as sim:
        monkeypatch.setenv("RECON_EXCHANGE_URL", sim.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(sim.key_file))
        with resolved_exchange().get_client() as client:
            started = time.monotonic()
            assert sum(len(page) for page in client.iter_fills(page_size=1)) == requests
            elapsed = time.monotonic() - started
            assert client.stats.requests == requests
    return elapsed


def test_default_pacing_leaves_the_bot_half_of_the_key_limit(monkeypatch, tmp_path):
    """The bot trades on the same key (about 30 private requests/s): a sync at the default
    pace takes at most 15/s, half of it, so the bot's own orders are never rate limited."""
    assert DEFAULT_REQUESTS_PER_SECOND == 15
    # 16 requests at 15/s are 15 intervals of 1/15 s: at least a second
    assert _seconds_for_requests(monkeypatch, tmp_path, 16) >= 0.95


def test_requests_per_second_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RECON_REQUESTS_PER_SECOND", "4")
    assert _seconds_for_requests(monkeypatch, tmp_path, 5) >= 0.95  # 4 intervals of 1/4 s


@pytest.mark.parametrize("value", ["0", "-3", "fast", "nan", "inf", "1e400"])
def test_a_bad_requests_per_second_is_refused(value, monkeypatch, capsys):
    from recon_assets.cli import main

    monkeypatch.setenv("RECON_REQUESTS_PER_SECOND", value)
    assert main(["sync", "-q"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "RECON_REQUESTS_PER_SECOND" in line and repr(value) in line
