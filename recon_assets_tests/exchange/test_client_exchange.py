"""ExchangeClient through the real SDK over real HTTP: the simulator, or a tiny scripted server."""

from __future__ import annotations

import json
import math
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import jwt
import pandas as pd
import pytest

from recon_assets.errors import ConfigError, ExchangeError
from recon_assets.exchange.client import FILLS_PATH, ClientStats, ExchangeClient, RetryPolicy
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.models import normalize_fills
from recon_assets.exchange.simulator import (Simulator, create_ec_key_file,
                                             create_ed25519_key_file, load_api_key)
from recon_assets.exchange.transport import reset_delay

FAST = RetryPolicy(max_attempts=10, max_seconds=30, base_delay=0.01, max_delay=0.1)
FILLS = demo_history().fills


def frame(records: list[dict]) -> pd.DataFrame:
    result, problems = normalize_fills(records)
    assert problems == []
    return result


def fetch_all(client: ExchangeClient, **filters: Any) -> list[dict]:
    return [fill for page in client.iter_fills(**filters) for fill in page]


@pytest.fixture
def sim(tmp_path) -> Iterator[Simulator]:
    with Simulator(FILLS, tmp_path / "key.json") as simulator:
        yield simulator


def client_for(sim: Simulator) -> ExchangeClient:
    return ExchangeClient(sim.url, key_file=sim.key_file, retry=FAST, requests_per_second=1000)


def test_pages_every_fill_exactly(sim):
    client = client_for(sim)
    pages = list(client.iter_fills(page_size=150))
    assert len(pages) == math.ceil(len(FILLS) / 150) and all(len(p) <= 150 for p in pages)
    pd.testing.assert_frame_equal(frame([f for p in pages for f in p]), frame(FILLS))
    assert client.stats.requests == len(pages) and client.stats.by_status == {"200": len(pages)}


ORDER_IDS = sorted({f["order_id"] for f in FILLS})[:40]
SEQ = sorted(f["sequence_timestamp"] for f in FILLS)
START, END = SEQ[200], SEQ[700]


@pytest.mark.parametrize("filters, keep", [
    ({"product_ids": ["ETH-USD", "SOL-USD"]}, lambda f: f["product_id"] != "BTC-USD"),
    ({"order_ids": ORDER_IDS}, lambda f: f["order_id"] in ORDER_IDS),
    ({"start_sequence_timestamp": START, "end_sequence_timestamp": END},
     lambda f: START <= f["sequence_timestamp"] < END),
    ({"product_ids": ["BTC-USD"], "start_sequence_timestamp": pd.Timestamp(START).to_pydatetime()},
     lambda f: f["product_id"] == "BTC-USD" and f["sequence_timestamp"] >= START),
])
def test_filters_select_exactly_the_matching_fills(sim, filters, keep):
    got = fetch_all(client_for(sim), page_size=37, **filters)
    expected = [f for f in FILLS if keep(f)]
    assert len(expected) > 37
    pd.testing.assert_frame_equal(frame(got), frame(expected))


def test_orders_listed_and_fetched_one_by_one(sim):
    client = client_for(sim)
    orders = client.list_orders(page_size=250)
    assert sorted(o["order_id"] for o in orders) == sorted({f["order_id"] for f in FILLS})
    assert client.get_order(ORDER_IDS[0])["order_id"] == ORDER_IDS[0]
    assert client.get_order("no-such-order") is None


def test_ed25519_keys_work(tmp_path):
    create_ed25519_key_file(tmp_path / "ed.json")
    with Simulator(FILLS[:5], tmp_path / "ed.json") as simulator:
        assert len(fetch_all(client_for(simulator))) == 5


def test_unknown_key_gets_401_without_leaking_it(sim, tmp_path, capfd):
    other = tmp_path / "other.json"
    create_ec_key_file(other)
    secret = json.loads(other.read_text())["privateKey"]
    name = json.loads(other.read_text())["name"]
    client = ExchangeClient(sim.url, key_file=other, retry=FAST)
    with pytest.raises(ExchangeError, match="401") as info:
        fetch_all(client)
    message = str(info.value)
    assert secret not in message and name not in message and "Bearer" not in message
    assert client.stats.requests == 1  # a 401 is not retried
    assert "HTTP Error" not in capfd.readouterr().err  # the SDK's duplicate line is dropped


def test_faults_and_a_low_rate_limit_still_give_the_exact_set(tmp_path):
    with Simulator(FILLS, tmp_path / "key.json", fail_rate=0.3, rate_limit=8, seed=5) as s:
        client = ExchangeClient(s.url, key_file=s.key_file, retry=FAST, seed=2,
                                requests_per_second=1000)
        pd.testing.assert_frame_equal(frame(fetch_all(client, page_size=100)), frame(FILLS))
    stats = client.stats
    assert stats.retries > 0 and stats.by_status["200"] == math.ceil(len(FILLS) / 100)
    assert stats.requests == sum(stats.by_status.values())


def test_pacing_keeps_under_the_servers_limit(tmp_path):
    with Simulator(FILLS, tmp_path / "key.json", rate_limit=5) as s:
        client = ExchangeClient(s.url, key_file=s.key_file, requests_per_second=4)
        assert len(fetch_all(client, page_size=200)) == len(FILLS)
    assert client.stats.retries == 0 and "429" not in client.stats.by_status


def test_dead_server_fails_fast_with_one_line(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    create_ec_key_file(tmp_path / "key.json")
    client = ExchangeClient(f"http://127.0.0.1:{port}", key_file=tmp_path / "key.json",
                            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02))
    with pytest.raises(ExchangeError, match="connection error after 3 attempts"):
        fetch_all(client)
    assert client.stats.retries == 2


Answer = Callable[[int], tuple[int, dict, dict]]


class Scripted(ThreadingHTTPServer):
    """Answers request n with ``answer(n)`` = (status, body, headers); keeps what it got."""

    daemon_threads = True

    def __init__(self, answer: Answer):
        self.answer, self.requests, self.sent = answer, [], []
        super().__init__(("127.0.0.1", 0), ScriptedHandler)


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.path, self.headers["Host"],
                                     self.headers["Authorization"]))
        self.server.sent.append((self.path, self.headers["User-Agent"],
                                 self.headers["Content-Type"], body))
        status, body, headers = self.server.answer(len(self.server.requests))
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**headers, "content-length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted(tmp_path) -> Iterator[Callable[[Answer], tuple[Scripted, ExchangeClient]]]:
    servers: list[Scripted] = []

    def start(answer: Answer) -> tuple[Scripted, ExchangeClient]:
        server = Scripted(answer)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        create_ec_key_file(tmp_path / f"key{len(servers)}.json")
        client = ExchangeClient(f"http://127.0.0.1:{server.server_address[1]}",
                                key_file=tmp_path / f"key{len(servers)}.json", retry=FAST)
        return server, client

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_jwt_binds_method_host_port_and_path(scripted, tmp_path):
    server, client = scripted(lambda n: (200, {"fills": [], "cursor": ""}, {}))
    assert fetch_all(client, product_ids=["BTC-USD"]) == []
    path, host, authorization = server.requests[0]
    key = load_api_key(tmp_path / "key1.json")
    claims = jwt.decode(authorization.removeprefix("Bearer "), key.public_key,
                        algorithms=[key.algorithm])
    assert claims["uri"] == f"GET {host}{FILLS_PATH}" and host.startswith("127.0.0.1:")
    assert path.startswith(FILLS_PATH + "?")


def test_a_fills_page_is_asked_exactly_as_the_sdks_get_fills_asks(scripted):
    """The client sends the SDK's request itself (to decode the answer once): the same path,
    query (lists repeated, no empty parameters), headers and ``{}`` body as ``get_fills``."""
    server, client = scripted(lambda n: (200, {"fills": [], "cursor": ""}, {}))
    fetch_all(client, product_ids=["BTC-USD", "ETH-USD"], start_sequence_timestamp=START)
    client._rest.get_fills(product_ids=["BTC-USD", "ETH-USD"], limit=1000,
                           start_sequence_timestamp=START)
    ours, sdks = server.sent
    assert ours[1:] == sdks[1:] and ours[3] == b"{}"
    assert urlsplit(ours[0]).path == urlsplit(sdks[0]).path == FILLS_PATH
    query = parse_qs(urlsplit(ours[0]).query)
    assert query == parse_qs(urlsplit(sdks[0]).query)
    assert query["product_ids"] == ["BTC-USD", "ETH-USD"] and "cursor" not in query


def test_429_waits_for_the_reset_and_retries(scripted):
    def answer(n: int) -> tuple[int, dict, dict]:
        if n == 1:
            return 429, {"message": "too many requests"}, {"x-ratelimit-remaining": "0",
                                                           "x-ratelimit-reset": "0.05"}
        return 200, {"fills": FILLS[:3], "cursor": ""}, {"x-ratelimit-remaining": "9"}
    _, client = scripted(answer)
    assert len(fetch_all(client)) == 3
    assert client.stats == ClientStats(requests=2, retries=1, by_status={"429": 1, "200": 1})


def test_a_repeating_cursor_is_an_error(scripted):
    _, client = scripted(lambda n: (200, {"fills": [], "cursor": "same"}, {}))
    with pytest.raises(ExchangeError, match="repeated a cursor"):
        fetch_all(client)


def test_a_listing_past_the_page_bound_is_an_error(scripted):
    _, client = scripted(lambda n: (200, {"fills": [], "cursor": f"c{n}"}, {}))
    with pytest.raises(ExchangeError, match="after 3"):
        fetch_all(client, max_pages=3)


@pytest.mark.parametrize("kwargs, match", [
    ({"key_file": "missing.json"}, "cannot read Coinbase key file"),
    ({"api_key": "organizations/x/apiKeys/y", "api_secret": "NOT-A-KEY-SECRET"},
     "neither a PEM EC key"),
    ({"api_key": "k"}, "no Coinbase credentials"),
    ({"key_file": "k.json", "api_key": "k", "api_secret": "s"}, "not both"),
])
def test_bad_credentials_are_config_errors_that_hide_the_secret(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        ExchangeClient("api.coinbase.com", **kwargs)
    assert "NOT-A-KEY-SECRET" not in str(info.value)


def test_base_url_forms(tmp_path):
    create_ec_key_file(tmp_path / "key.json")
    for url, origin in [("http://127.0.0.1:8799", "http://127.0.0.1:8799"),
                        ("https://exchange.example:8443/", "https://exchange.example:8443"),
                        ("api.coinbase.com", "https://api.coinbase.com")]:
        assert ExchangeClient(url, key_file=tmp_path / "key.json").origin == origin
    with pytest.raises(ConfigError, match="host"):
        ExchangeClient("ftp://x/y", key_file=tmp_path / "key.json")


def test_backoff_grows_with_jitter_up_to_the_cap():
    policy, rng = RetryPolicy(base_delay=0.5, max_delay=4.0), random.Random(0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = {policy.backoff(attempt, rng) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1


@pytest.mark.parametrize("value, expected", [
    ("0.250", 0.25), ("3", 3.0), (None, None), ("soon", None), ("-2", 0.0)])
def test_reset_header_is_read_as_seconds_to_wait(value, expected):
    assert reset_delay(value) == expected


def test_reset_header_may_be_an_epoch_time():
    assert 0 < reset_delay(str(time.time() + 30)) <= 30
    assert 0 < reset_delay(str(int((time.time() + 30) * 1000))) <= 30


def test_answers_cut_off_mid_body_and_connection_resets_are_retried(tmp_path):
    with Simulator(FILLS, tmp_path / "key.json", truncate_rate=0.5, seed=4) as s:
        client = ExchangeClient(s.url, key_file=s.key_file, retry=FAST, seed=1,
                                requests_per_second=1000)
        pd.testing.assert_frame_equal(frame(fetch_all(client, page_size=50)), frame(FILLS))
        truncated = s.stats.truncated
    assert set(truncated) == {"short", "cut", "reset"}, truncated
    assert client.stats.retries == sum(truncated.values())


def test_every_answer_cut_off_gives_up_with_one_line(tmp_path):
    with Simulator(FILLS, tmp_path / "key.json", truncate_rate=1.0, seed=2) as s:
        client = ExchangeClient(s.url, key_file=s.key_file, requests_per_second=1000,
                                retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02))
        with pytest.raises(ExchangeError, match=r"after 4 attempts") as info:
            fetch_all(client)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_plain_text_401_is_one_clean_line(sim, tmp_path):
    other = tmp_path / "other.json"
    create_ec_key_file(other)
    client = ExchangeClient(sim.url, key_file=other, retry=FAST)
    with pytest.raises(ExchangeError) as info:
        fetch_all(client)
    assert str(info.value) == f"GET {FILLS_PATH}: HTTP 401 Unauthorized (attempt 1)"
    assert client.stats.requests == 1


def test_html_error_pages_are_retried_and_reported_without_the_page(tmp_path):
    with Simulator(FILLS, tmp_path / "key.json", fail_rate=0.3, rate_limit=5, seed=8,
                   html_errors=True) as s:
        client = ExchangeClient(s.url, key_file=s.key_file, retry=FAST, seed=2,
                                requests_per_second=1000)
        pd.testing.assert_frame_equal(frame(fetch_all(client, page_size=100)), frame(FILLS))
        served = s.stats.by_status
    assert 429 in served and any(status >= 500 for status in served), served
    with Simulator(FILLS, tmp_path / "key.json", fail_rate=1.0, html_errors=True) as s:
        client = ExchangeClient(s.url, key_file=s.key_file, requests_per_second=1000,
                                retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02))
        with pytest.raises(ExchangeError, match=r"HTTP 50[023] .* after 3 attempts") as info:
            fetch_all(client)
    message = str(info.value)
    assert "<" not in message and "html" not in message.lower() and "\n" not in message


@pytest.mark.parametrize("remaining, reset", [
    ("X-RateLimit-Remaining", "X-RateLimit-Reset"),
    ("x-ratelimit-remaining", "x-ratelimit-reset"),
    ("X-RATELIMIT-REMAINING", "x-RateLimit-reset"),
])
def test_rate_limit_headers_pace_whatever_their_case(scripted, remaining, reset):
    def answer(n: int) -> tuple[int, dict, dict]:
        if n == 1:
            return 200, {"fills": FILLS[:2], "cursor": "next"}, {remaining: "0", reset: "0.4"}
        return 200, {"fills": FILLS[2:3], "cursor": ""}, {remaining: "5", reset: "0.4"}
    _, client = scripted(answer)
    started = time.monotonic()
    assert len(fetch_all(client)) == 3
    assert time.monotonic() - started >= 0.4  # the second request waited for the reset


def test_a_429_waits_for_a_reset_header_in_any_case(scripted):
    def answer(n: int) -> tuple[int, dict, dict]:
        if n == 1:
            return 429, {"message": "slow down"}, {"X-RateLimit-Reset": "0.3"}
        return 200, {"fills": FILLS[:1], "cursor": ""}, {}
    _, client = scripted(answer)
    started = time.monotonic()
    assert len(fetch_all(client)) == 1
    assert time.monotonic() - started >= 0.3


def test_source_names_host_and_key_name_never_the_secret(sim):
    key = json.loads(sim.key_file.read_text())
    client = ExchangeClient(sim.url, key_file=sim.key_file)
    assert client.source == f"127.0.0.1 key {key['name']}"  # the port is not the exchange
    assert key["privateKey"] not in client.source
    assert ExchangeClient(sim.url, key_file=sim.key_file, source="simulator").source == "simulator"
    with pytest.raises(AttributeError):
        client.source = "elsewhere"
