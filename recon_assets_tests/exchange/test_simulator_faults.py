"""Injected faults: rate limit, random server errors, latency and fill retention."""

from __future__ import annotations

import http.client
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from recon_assets.exchange.simulator import Simulator
from recon_assets.exchange.simulator.faults import RateLimiter
from recon_assets_tests.exchange import all_fills, all_orders, sdk_client

RATE_HEADERS = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]


def _fill(n: int, when: datetime) -> dict[str, Any]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"entry_id": f"e{n}", "trade_id": f"t{n}", "order_id": f"o{n}", "trade_time": stamp,
            "trade_type": "FILL", "price": "100.00", "size": "0.5", "commission": "0.3",
            "product_id": "SOL-USD", "sequence_timestamp": stamp,
            "liquidity_indicator": "TAKER", "size_in_quote": False, "user_id": "u",
            "side": "BUY"}


FILLS = [_fill(n, datetime(2026, 10, 1, tzinfo=timezone.utc) + timedelta(hours=n))
         for n in range(3)]


def _sent_header_names(response: requests.Response) -> list[str]:
    """Header names exactly as the server wrote them (requests' own dict ignores case)."""
    return list(response.raw.headers.keys())


def test_rate_limiter_counts_a_sliding_second() -> None:
    now = [100.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.admit().allowed
    now[0] = 100.4
    second = limiter.admit()
    assert second.allowed and second.remaining == 0
    now[0] = 100.9
    refused = limiter.admit()
    assert not refused.allowed and refused.remaining == 0
    assert refused.reset_seconds == pytest.approx(0.1)
    assert refused.headers()["x-ratelimit-reset"] == "0.100"
    now[0] = 101.0  # the first request has left the window; the refused one never counted
    assert limiter.admit().allowed
    assert not limiter.admit().allowed


def test_without_a_limit_nothing_is_refused_and_30_is_advertised() -> None:
    limiter = RateLimiter(None, clock=lambda: 5.0)
    decisions = [limiter.admit() for _ in range(40)]
    assert all(d.allowed for d in decisions)
    assert decisions[0].headers()["x-ratelimit-limit"] == "30"
    assert decisions[-1].remaining == 0


def test_rate_limit_answers_429_with_lowercase_headers(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    with Simulator(FILLS, key_file, rate_limit=1) as simulator:
        client = sdk_client(simulator.port, key_file, rate_limit_headers=True)
        refused = None
        for _ in range(50):  # back-to-back requests: two soon land inside one second
            try:
                client.get_fills()
            except requests.HTTPError as error:
                refused = error.response
                break
        assert refused is not None and refused.status_code == 429
        assert refused.json()["error"] == "RATE_LIMIT_EXCEEDED"
        assert set(RATE_HEADERS) <= set(_sent_header_names(refused))
        assert refused.headers["x-ratelimit-limit"] == "1"
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert int(refused.headers["retry-after"]) >= 1
        assert simulator.stats.by_status[429] == 1


def test_every_answer_carries_the_headers_the_sdk_reads(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    with Simulator(FILLS, key_file) as simulator:
        result = sdk_client(simulator.port, key_file, rate_limit_headers=True).get_fills()
        assert result.rate_limit_limit == "30" and result.rate_limit_remaining is not None
        unauthenticated = requests.get(simulator.url + "/nowhere", timeout=10)
        assert unauthenticated.status_code == 401
        assert set(RATE_HEADERS) <= set(_sent_header_names(unauthenticated))
        connection = http.client.HTTPConnection("127.0.0.1", simulator.port, timeout=10)
        connection.putrequest("GET", "/nowhere")
        connection.putheader("Content-Length", "two")
        connection.endheaders()
        unframed = connection.getresponse()
        assert unframed.status == 400
        assert set(RATE_HEADERS) <= {name for name, _ in unframed.getheaders()}
        connection.close()


def _statuses(simulator: Simulator, key_file: Path, count: int) -> list[int]:
    client = sdk_client(simulator.port, key_file)
    statuses = []
    for _ in range(count):
        try:
            client.get_fills()
            statuses.append(200)
        except requests.HTTPError as error:
            statuses.append(error.response.status_code)
    return statuses


def test_fail_rate_injects_random_server_errors_reproducibly(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    with Simulator(FILLS, key_file, fail_rate=1.0) as simulator:
        assert set(_statuses(simulator, key_file, 20)) <= {500, 502, 503}
    runs = []
    for _ in range(2):
        with Simulator(FILLS, key_file, fail_rate=0.5, seed=11, latency_ms=1) as simulator:
            runs.append(_statuses(simulator, key_file, 30))
    assert runs[0] == runs[1]
    assert 200 in runs[0] and set(runs[0]) - {200} <= {500, 502, 503}
    assert set(runs[0]) != {200}


def test_retention_hides_old_fills_and_their_orders(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    fills = [_fill(1, now - timedelta(days=100)), _fill(2, now - timedelta(days=80)),
             _fill(3, now - timedelta(days=1))]
    key_file = tmp_path / "key.json"
    with Simulator(fills, key_file, retention_days=84) as simulator:
        client = sdk_client(simulator.port, key_file)
        assert [f["entry_id"] for f in all_fills(client)] == ["e2", "e3"]
        assert [f["entry_id"] for f in all_fills(client, order_ids=["o1"])] == []
        assert [o["order_id"] for o in all_orders(client)] == ["o3", "o2"]
        with pytest.raises(requests.HTTPError) as raised:
            client.get_order("o1")
        assert raised.value.response.status_code == 404
        assert client.get_order("o2").order.order_id == "o2"


def test_truncate_rate_cuts_answers_off_in_three_ways(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    with Simulator(FILLS, key_file, truncate_rate=1.0, seed=3) as simulator:
        failures = set()
        for _ in range(30):
            client = sdk_client(simulator.port, key_file)  # a fresh connection each time
            with pytest.raises(requests.RequestException) as raised:
                client.get_fills()
            failures.add(type(raised.value))
        truncated = simulator.stats.truncated
    assert set(truncated) == {"short", "cut", "reset"} and sum(truncated.values()) == 30
    assert failures == {requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.JSONDecodeError, requests.ConnectionError}


def test_html_errors_answer_429_and_5xx_with_html_pages(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    with Simulator(FILLS, key_file, fail_rate=1.0, rate_limit=1, html_errors=True) as simulator:
        client = sdk_client(simulator.port, key_file)
        statuses = set()
        for _ in range(20):
            with pytest.raises(requests.HTTPError) as raised:
                client.get_fills()
            response = raised.value.response
            statuses.add(response.status_code)
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert response.text.startswith("<!DOCTYPE html>")
    assert 429 in statuses and statuses - {429} <= {500, 502, 503} and len(statuses) > 1
