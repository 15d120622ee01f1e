"""Tests of the exchange side, and the helpers they share to reach the simulator.

The SDK always builds ``https://{base_url}{path}``; the simulator speaks plain HTTP. The
tests drive the real, unmodified ``RESTClient`` over real HTTP through the project's own
transport adapter (:func:`recon_assets.exchange.transport.mount_plain_http`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coinbase.rest import RESTClient

from recon_assets.exchange.transport import mount_plain_http


def sdk_client(port: int, key_file: Path, **options: Any) -> RESTClient:
    """The real SDK client, signing with ``key_file``, pointed at a local simulator."""
    base_url = f"127.0.0.1:{port}"
    client = RESTClient(api_key=None, api_secret=None, key_file=str(key_file),
                        base_url=base_url, timeout=10, **options)
    mount_plain_http(client.session, base_url)
    return client


def all_fills(client: RESTClient, cursor: str | None = None,
              **filters: Any) -> list[dict[str, Any]]:
    """Every fill matching ``filters`` (from ``cursor`` on), following the cursor to the end."""
    fills: list[dict[str, Any]] = []
    while True:
        page = client.get_fills(cursor=cursor, **filters).to_dict()
        fills += page.get("fills", [])
        cursor = page.get("cursor")
        if not cursor:
            return fills


def all_orders(client: RESTClient, cursor: str | None = None,
               **filters: Any) -> list[dict[str, Any]]:
    """Every order matching ``filters``, following ``has_next``/``cursor`` to the end."""
    orders: list[dict[str, Any]] = []
    while True:
        page = client.list_orders(cursor=cursor, **filters).to_dict()
        orders += page.get("orders", [])
        if not page.get("has_next"):
            return orders
        cursor = page["cursor"]
