"""Query parameters, filters and cursor paging for the list endpoints.

Cursors are opaque to clients but simple inside: base64url JSON naming the last item served
(a fill's insertion index, an order's id) plus a digest of the filter. Resuming *after an
item* instead of at an offset keeps pages right when fills are added between two pages, and
the digest makes a cursor from another query a 400 instead of a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from itertools import islice
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence, TypeVar

from recon_assets.exchange.simulator.book import StoredFill, parse_rfc3339
from recon_assets.exchange.simulator.orders import StoredOrder

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Params = dict[str, list[str]]
T = TypeVar("T")

#: ``sort_by`` values of list fills; the default is sequence_timestamp, then trade_id.
FILL_SORTS: dict[str | None, Callable[[StoredFill], tuple[Any, ...]]] = {
    None: lambda f: (f.sequence_time, f.fill["trade_id"], f.index),
    "TRADE_TIME": lambda f: (f.trade_time, f.fill["trade_id"], f.index),
    "PRICE": lambda f: (f.price, f.fill["trade_id"], f.index),
}


class QueryError(ValueError):
    """A bad parameter or cursor: the client gets a 400 with this message."""


def _one(params: Params, name: str) -> str | None:
    values = [v for v in params.get(name, []) if v != ""]
    if len(values) > 1:
        raise QueryError(f"{name} given more than once")
    return values[0] if values else None


def _many(params: Params, name: str) -> frozenset[str] | None:
    """A repeated list parameter (``product_ids=A&product_ids=B``, as the SDK sends it)."""
    values = frozenset(v for v in params.get(name, []) if v != "")
    return values or None


def _time(params: Params, name: str) -> datetime | None:
    text = _one(params, name)
    if text is None:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise QueryError(f"{name} must be an RFC3339 time with offset, got {text!r}") from None


def _limit(params: Params) -> int:
    text = _one(params, "limit")
    if text is None:
        return DEFAULT_LIMIT
    try:
        value = int(text)
    except ValueError:
        raise QueryError(f"limit must be an integer, got {text!r}") from None
    if value < 1:
        raise QueryError("limit must be at least 1")
    return min(value, MAX_LIMIT)


def _digest(*parts: Any) -> str:
    canonical = json.dumps([sorted(p) if isinstance(p, frozenset) else p for p in parts],
                           default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(digest: str, after: int | str) -> str:
    payload = json.dumps({"q": digest, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(text: str | None, digest: str) -> Any:
    if text is None:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        query, after = payload["q"], payload["a"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise QueryError("invalid cursor") from None
    if query != digest:
        raise QueryError("cursor belongs to a different query")
    return after


@dataclass(frozen=True)
class FillQuery:
    """The parameters of list fills; times filter ``sequence_timestamp`` as [start, end)."""

    order_ids: frozenset[str] | None
    trade_ids: frozenset[str] | None
    product_ids: frozenset[str] | None
    start: datetime | None
    end: datetime | None
    sort_by: str | None
    limit: int
    digest: str
    after: int | None

    @classmethod
    def parse(cls, params: Params) -> FillQuery:
        sort_by = _one(params, "sort_by")
        if sort_by not in FILL_SORTS:
            raise QueryError(f"sort_by must be one of TRADE_TIME, PRICE, got {sort_by!r}")
        fields = (_many(params, "order_ids"), _many(params, "trade_ids"),
                  _many(params, "product_ids"), _time(params, "start_sequence_timestamp"),
                  _time(params, "end_sequence_timestamp"), sort_by)
        digest = _digest("fills", *fields)
        after = _decode_cursor(_one(params, "cursor"), digest)
        if after is not None and not isinstance(after, int):
            raise QueryError("invalid cursor")
        return cls(*fields, limit=_limit(params), digest=digest, after=after)

    def matches(self, item: StoredFill) -> bool:
        fill = item.fill
        return ((self.order_ids is None or fill["order_id"] in self.order_ids)
                and (self.trade_ids is None or fill["trade_id"] in self.trade_ids)
                and (self.product_ids is None or fill["product_id"] in self.product_ids)
                and (self.start is None or item.sequence_time >= self.start)
                and (self.end is None or item.sequence_time < self.end))


@dataclass(frozen=True)
class OrderQuery:
    """The parameters of list orders; times filter ``created_time`` as [start, end)."""

    order_ids: frozenset[str] | None
    product_ids: frozenset[str] | None
    statuses: frozenset[str] | None
    side: str | None
    start: datetime | None
    end: datetime | None
    limit: int
    digest: str
    after: str | None

    @classmethod
    def parse(cls, params: Params) -> OrderQuery:
        fields = (_many(params, "order_ids"), _many(params, "product_ids"),
                  _many(params, "order_status"), _one(params, "order_side"),
                  _time(params, "start_date"), _time(params, "end_date"))
        digest = _digest("orders", *fields)
        after = _decode_cursor(_one(params, "cursor"), digest)
        if after is not None and not isinstance(after, str):
            raise QueryError("invalid cursor")
        return cls(*fields, limit=_limit(params), digest=digest, after=after)

    def matches(self, item: StoredOrder) -> bool:
        # Every simulated order is FILLED, so any other status filter selects nothing.
        return ((self.order_ids is None or item.order_id in self.order_ids)
                and (self.product_ids is None or item.product_id in self.product_ids)
                and (self.statuses is None or "FILLED" in self.statuses)
                and (self.side is None or item.side == self.side)
                and (self.start is None or item.created_time >= self.start)
                and (self.end is None or item.created_time < self.end))


def page_after(items: Sequence[T], key: Callable[[T], Any], after_key: Any | None,
               limit: int, keep: Callable[[T], bool], descending: bool = False
               ) -> tuple[list[T], bool]:
    """The next ``limit`` kept items (``items`` sorted by ``key`` in that direction) past
    ``after_key``, and whether more follow.

    Only the items from the cursor up to one beyond the page are looked at, so walking a
    large book page by page costs about one pass over it, not one pass per page.
    """
    start = 0
    if after_key is not None:
        # Items past the cursor form a suffix of the sorted list: binary search for it.
        past = (lambda k: k < after_key) if descending else (lambda k: k > after_key)
        start, end = 0, len(items)
        while start < end:
            middle = (start + end) // 2
            if past(key(items[middle])):
                end = middle
            else:
                start = middle + 1
    chunk: list[T] = []
    for item in islice(items, start, None):
        if keep(item):
            if len(chunk) == limit:
                return chunk, True
            chunk.append(item)
    return chunk, False
