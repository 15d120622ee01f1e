"""JWT checks and key files: only tokens from the known key, for this very request, pass."""

from __future__ import annotations

import json
import logging
import stat
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jwt
import pytest
import requests
from coinbase import jwt_generator
from cryptography.hazmat.primitives import serialization

from recon_assets.exchange.simulator import (ApiKey, Simulator, create_ec_key_file,
                                             create_ed25519_key_file, load_api_key)
from recon_assets_tests.exchange import sdk_client

FILLS_PATH = "/api/v3/brokerage/orders/historical/fills"
FILL = {"entry_id": "e1", "trade_id": "t1", "order_id": "o1",
        "trade_time": "2026-10-01T00:00:00Z", "trade_type": "FILL", "price": "100.00",
        "size": "0.5", "commission": "0.3", "product_id": "SOL-USD",
        "sequence_timestamp": "2026-10-01T00:00:00.002Z", "liquidity_indicator": "TAKER",
        "size_in_quote": False, "user_id": "u", "side": "BUY"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    key_file = tmp_path / "key.json"
    with Simulator([FILL], key_file) as simulator:
        yield simulator, key_file


def _status(call: Callable[[], Any]) -> int:
    with pytest.raises(requests.HTTPError) as raised:
        call()
    return raised.value.response.status_code


@pytest.mark.parametrize("create", [create_ec_key_file, create_ed25519_key_file])
def test_es256_and_ed25519_keys_both_work(tmp_path: Path,
                                          create: Callable[[Path], ApiKey]) -> None:
    key_file = tmp_path / "key.json"
    created = create(key_file)
    assert load_api_key(key_file).algorithm == created.algorithm
    with Simulator([FILL], key_file) as simulator:
        assert simulator.key.name == created.name
        fills = sdk_client(simulator.port, key_file).get_fills().fills
        assert [f.entry_id for f in fills] == ["e1"]


def test_a_missing_key_file_is_created_private_and_usable(served) -> None:
    simulator, key_file = served
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    data = json.loads(key_file.read_text())
    assert data["name"].startswith("organizations/") and "/apiKeys/" in data["name"]
    assert data["privateKey"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert sdk_client(simulator.port, key_file).get_fills().fills
    assert "PRIVATE" not in repr(simulator.key)


def test_a_key_the_server_does_not_know_is_401(served, tmp_path: Path) -> None:
    simulator, _ = served
    other = tmp_path / "other.json"
    create_ec_key_file(other)
    assert _status(lambda: sdk_client(simulator.port, other).get_fills()) == 401


def _signed(key_file: Path, **changes: Any) -> str:
    """A token like the SDK's, signed with the key file's EC key, with some claims changed."""
    data = json.loads(key_file.read_text())
    private = serialization.load_pem_private_key(data["privateKey"].encode(), password=None)
    now = int(time.time())
    claims = {"sub": data["name"], "iss": "cdp", "nbf": now, "exp": now + 120}
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, private,
                      algorithm="ES256", headers={"kid": data["name"], "nonce": "n"})


def test_tokens_that_do_not_bind_this_request_are_401(served) -> None:
    simulator, key_file = served
    host = f"127.0.0.1:{simulator.port}"
    data = json.loads(key_file.read_text())

    def get(token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(simulator.url + FILLS_PATH, headers=headers, timeout=10).status_code

    good = jwt_generator.build_rest_jwt(f"GET {host}{FILLS_PATH}", data["name"],
                                        data["privateKey"])
    assert get(good) == 200
    assert get(jwt_generator.build_rest_jwt(f"GET {host}/api/v3/brokerage/accounts",
                                            data["name"], data["privateKey"])) == 401
    assert get(jwt_generator.build_rest_jwt(f"GET api.coinbase.com{FILLS_PATH}",
                                            data["name"], data["privateKey"])) == 401
    assert get(jwt_generator.build_rest_jwt(f"POST {host}{FILLS_PATH}",
                                            data["name"], data["privateKey"])) == 401
    uri = f"GET {host}{FILLS_PATH}"
    assert get(_signed(key_file, uri=uri)) == 200
    assert get(_signed(key_file, uri=uri, exp=int(time.time()) - 60)) == 401
    assert get(_signed(key_file, uri=uri, nbf=int(time.time()) + 600)) == 401
    assert get(_signed(key_file, uri=uri, iss="someone")) == 401
    assert get(_signed(key_file, uri=uri, sub="organizations/x/apiKeys/y")) == 401
    assert get(_signed(key_file, uri=None)) == 401
    assert get("not.a.token") == 401
    assert get(None) == 401
    response = requests.get(simulator.url + FILLS_PATH, timeout=10)
    # Like Coinbase: a plain-text body, not the JSON error shape of other failures.
    assert (response.text, response.headers["content-type"]) == (
        "Unauthorized", "text/plain; charset=utf-8")


def test_requests_are_logged_without_secrets(served, caplog: pytest.LogCaptureFixture) -> None:
    simulator, key_file = served
    caplog.set_level(logging.DEBUG, logger="recon_assets.exchange.simulator")
    client = sdk_client(simulator.port, key_file)
    client.get_fills(product_ids=["SOL-USD"])
    _status(lambda: client.get_order("nope"))
    lines = [r.getMessage() for r in caplog.records
             if r.name.startswith("recon_assets.exchange.simulator")]
    assert f"GET {FILLS_PATH} 200" in lines
    assert "GET /api/v3/brokerage/orders/historical/nope 404" in lines
    secret = json.loads(key_file.read_text())["privateKey"]
    for line in lines:
        assert "Bearer" not in line and "eyJ" not in line and secret[40:80] not in line
