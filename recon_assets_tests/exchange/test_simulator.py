"""The simulator's endpoints through the real SDK over real HTTP: paging, filters, orders."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from recon_assets.errors import BadRowError
from recon_assets.exchange.demo import DemoHistory, demo_history
from recon_assets.exchange.simulator import Simulator, load_fills_jsonl, write_fills_jsonl
from recon_assets_tests.exchange import all_fills, all_orders, sdk_client


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _served_order(fills: list[dict[str, Any]]) -> list[tuple[datetime, str]]:
    return [(_time(f["sequence_timestamp"]), f["trade_id"]) for f in fills]


@pytest.fixture(scope="module")
def history() -> DemoHistory:
    return demo_history()


@pytest.fixture(scope="module")
def served(history: DemoHistory, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Simulator, Path]]:
    key_file = tmp_path_factory.mktemp("simulator") / "key.json"
    with Simulator(history.fills, key_file) as simulator:
        yield simulator, key_file


@pytest.fixture
def client(served: tuple[Simulator, Path]):
    simulator, key_file = served
    return sdk_client(simulator.port, key_file)


def test_pages_every_fill_once_in_sequence_order(client, history: DemoHistory) -> None:
    fills = all_fills(client, limit=250)
    assert sorted(f["entry_id"] for f in fills) == sorted(f["entry_id"] for f in history.fills)
    assert _served_order(fills) == sorted(_served_order(fills))
    assert fills[0] == min(history.fills, key=lambda f: (_time(f["sequence_timestamp"]),
                                                           f["trade_id"]))


def test_default_limit_is_100_and_limit_is_capped_at_1000(client) -> None:
    assert len(client.get_fills().fills) == 100
    page = client.get_fills(limit=5000)
    assert len(page.fills) == 1000 and page.cursor


FILTERS = {
    "product": lambda h: {"product_ids": ["ETH-USD", "SOL-USD"]},
    "orders": lambda h: {"order_ids": [o["order_id"] for o in h.orders[10:14]]},
    "trades": lambda h: {"trade_ids": [f["trade_id"] for f in h.fills[5:300:7]]},
    "window": lambda h: {"start_sequence_timestamp": h.fills[300]["sequence_timestamp"],
                         "end_sequence_timestamp": h.fills[700]["sequence_timestamp"]},
    "combined": lambda h: {"product_ids": ["BTC-USD"],
                           "start_sequence_timestamp": "2026-09-01T00:00:00Z",
                           "end_sequence_timestamp": "2026-10-01T00:00:00+00:00"},
}


def _expected(history: DemoHistory, filters: dict[str, Any]) -> list[str]:
    start = filters.get("start_sequence_timestamp")
    end = filters.get("end_sequence_timestamp")
    return sorted(
        f["entry_id"] for f in history.fills
        if f["product_id"] in filters.get("product_ids", [f["product_id"]])
        and f["order_id"] in filters.get("order_ids", [f["order_id"]])
        and f["trade_id"] in filters.get("trade_ids", [f["trade_id"]])
        and (start is None or _time(f["sequence_timestamp"]) >= _time(start))
        and (end is None or _time(f["sequence_timestamp"]) < _time(end)))


@pytest.mark.parametrize("name", FILTERS)
def test_filters_select_exactly_the_matching_fills(client, history: DemoHistory,
                                                   name: str) -> None:
    filters = FILTERS[name](history)
    fills = all_fills(client, limit=37, **filters)
    expected = _expected(history, filters)
    assert expected, "the filter should select something"
    assert sorted(f["entry_id"] for f in fills) == expected
    assert _served_order(fills) == sorted(_served_order(fills))


@pytest.mark.parametrize("sort_by,key", [
    ("TRADE_TIME", lambda f: (_time(f["trade_time"]), f["trade_id"])),
    ("PRICE", lambda f: (Decimal(f["price"]), f["trade_id"])),
])
def test_sort_by(client, history: DemoHistory, sort_by: str, key) -> None:
    fills = all_fills(client, sort_by=sort_by, product_ids=["SOL-USD"], limit=100)
    assert len(fills) == sum(f["product_id"] == "SOL-USD" for f in history.fills)
    assert [key(f) for f in fills] == sorted(key(f) for f in fills)


@pytest.mark.parametrize("params", [
    {"sort_by": "SIZE"}, {"limit": 0}, {"start_sequence_timestamp": "2026-09-01T00:00:00"},
    {"cursor": "not-a-cursor"},
])
def test_bad_parameters_are_400(client, params: dict[str, Any]) -> None:
    with pytest.raises(requests.HTTPError) as raised:
        client.get_fills(**params)
    assert raised.value.response.status_code == 400


def test_a_cursor_from_another_query_is_rejected(client) -> None:
    cursor = client.get_fills(product_ids=["BTC-USD"], limit=10).cursor
    assert client.get_fills(product_ids=["BTC-USD"], limit=20, cursor=cursor).fills
    with pytest.raises(requests.HTTPError) as raised:
        client.get_fills(product_ids=["ETH-USD"], limit=10, cursor=cursor)
    assert raised.value.response.status_code == 400
    with pytest.raises(requests.HTTPError):
        client.list_orders(cursor=cursor)


def _check_order(order: dict[str, Any], expected: dict[str, Any], fill_count: int) -> None:
    assert order["product_id"] == expected["symbol"]
    assert order["side"] == expected["side"].upper()
    assert order["status"] == "FILLED"
    assert Decimal(order["filled_size"]) == expected["size"]
    assert Decimal(order["average_filled_price"]) == expected["price"]
    assert Decimal(order["total_fees"]) == expected["total_fees_usd"]
    assert _time(order["created_time"]) == expected["order_time"]
    assert int(order["number_of_fills"]) == fill_count


def test_list_orders_pages_every_order_newest_first(client, history: DemoHistory) -> None:
    orders = all_orders(client, limit=77)
    assert len(orders) == len(history.orders)
    by_id = {o["order_id"]: o for o in orders}
    for expected in history.orders:
        count = sum(f["order_id"] == expected["order_id"] for f in history.fills)
        _check_order(by_id[expected["order_id"]], expected, count)
    times = [(_time(o["created_time"]), o["order_id"]) for o in orders]
    assert times == sorted(times, reverse=True)


def test_list_orders_filters(client, history: DemoHistory) -> None:
    wanted = [o["order_id"] for o in history.orders[100:105]]
    assert {o["order_id"] for o in all_orders(client, order_ids=wanted)} == set(wanted)
    sol = all_orders(client, product_ids=["SOL-USD"], order_side="SELL", limit=10)
    assert {o["order_id"] for o in sol} == {o["order_id"] for o in history.orders
                                            if o["symbol"] == "SOL-USD" and o["side"] == "sell"}
    start, end = history.orders[200]["order_time"], history.orders[260]["order_time"]
    window = all_orders(client, start_date=start.isoformat(), end_date=end.isoformat())
    assert [o["order_id"] for o in reversed(window)] == [o["order_id"]
                                                         for o in history.orders[200:260]]
    assert all_orders(client, order_status=["OPEN"]) == []


def test_get_order(client, history: DemoHistory) -> None:
    expected = history.orders[42]
    order = client.get_order(expected["order_id"]).to_dict()["order"]
    count = sum(f["order_id"] == expected["order_id"] for f in history.fills)
    _check_order(order, expected, count)
    with pytest.raises(requests.HTTPError) as raised:
        client.get_order("00000000-0000-4000-8000-000000000000")
    assert raised.value.response.status_code == 404


def _fill(n: int, when: str) -> dict[str, Any]:
    return {"entry_id": f"e{n}", "trade_id": f"t{n}", "order_id": f"o{n}", "trade_time": when,
            "trade_type": "FILL", "price": "100.00", "size": "0.5", "commission": "0.3",
            "product_id": "SOL-USD", "sequence_timestamp": when, "liquidity_indicator": "TAKER",
            "size_in_quote": False, "user_id": "u", "side": "BUY"}


def test_fills_added_mid_sync_appear_on_later_pages(tmp_path: Path) -> None:
    first = [_fill(n, f"2026-10-01T00:00:{n:02d}Z") for n in range(10)]
    with Simulator(first, tmp_path / "key.json") as simulator:
        client = sdk_client(simulator.port, tmp_path / "key.json")
        page = client.get_fills(limit=4)
        simulator.add_fills([_fill(n, f"2026-10-02T00:00:{n:02d}Z") for n in range(10, 13)])
        rest = all_fills(client, limit=4, cursor=page.cursor)
        ids = [f.entry_id for f in page.fills] + [f["entry_id"] for f in rest]
        assert ids == [f"e{n}" for n in range(13)]
        assert simulator.stats.requests == 1 + 3
        assert simulator.stats.by_status == {200: 4}


def test_bad_fills_are_refused_with_every_problem_named(tmp_path: Path) -> None:
    bad = [_fill(1, "yesterday"), {**_fill(2, "2026-10-01T00:00:00Z"), "price": 3.5}]
    del bad[1]["side"]
    with pytest.raises(BadRowError) as raised:
        Simulator(bad, tmp_path / "key.json")
    assert {(p[0], p[1]) for p in raised.value.problems} == {
        ("e1", "trade_time"), ("e1", "sequence_timestamp"), ("e2", "side")}


def test_fills_jsonl_round_trip(tmp_path: Path, history: DemoHistory) -> None:
    path = tmp_path / "fills.jsonl"
    write_fills_jsonl(path, history.fills)
    assert load_fills_jsonl(path) == history.fills
