"""What the simulator answers: routing, authentication, faults and the three order endpoints.

Kept apart from the HTTP plumbing in :mod:`server`, so the rules a client depends on (which
checks come first, which status each failure gets, what a page holds) read in one place.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from recon_assets.exchange.simulator.book import FillBook, StoredFill
from recon_assets.exchange.simulator.faults import RandomFault, RateLimiter
from recon_assets.exchange.simulator.keys import ApiKey, AuthError, verify_request_token
from recon_assets.exchange.simulator.orders import StoredOrder, orders_from_fills
from recon_assets.exchange.simulator.queries import (FILL_SORTS, FillQuery, OrderQuery,
                                                     QueryError, encode_cursor, page_after)

logger = logging.getLogger(__name__)
ORDERS_PATH = "/api/v3/brokerage/orders/historical"
OrdersView = tuple[list[StoredOrder], dict[str, StoredOrder]]
ERROR_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 429: "RATE_LIMIT_EXCEEDED", 500: "INTERNAL",
               502: "BAD_GATEWAY", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class Response:
    """One answer: a JSON object, or text (``content_type`` says which), and how to cut it
    off (``truncation``, one of :data:`~.faults.TRUNCATIONS`) when a fault says so."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    truncation: str | None = None


def error_response(status: int, message: str, html: bool = False) -> Response:
    """The JSON error shape of Advanced Trade (a code, details and a message), or, with
    ``html``, the HTML page a proxy or load balancer in front of it answers with."""
    code = ERROR_CODES[status]
    if html:
        page = (f"<!DOCTYPE html>\n<html><head><title>{status} {code}</title></head>\n"
                f"<body><h1>{status} {code}</h1><p>{message}</p></body></html>\n")
        return Response(status, page, content_type="text/html; charset=utf-8")
    return Response(status, {"error": code, "error_details": message, "message": message})


#: Coinbase answers a request it cannot authenticate with this plain-text body.
UNAUTHORIZED = Response(401, "Unauthorized", content_type="text/plain; charset=utf-8")


@dataclass(frozen=True)
class SimulatorStats:
    """Requests answered so far, in total and per HTTP status code, and how many successful
    answers were cut off, per kind of :data:`~.faults.TRUNCATIONS`."""

    requests: int
    by_status: dict[int, int]
    truncated: dict[str, int] = field(default_factory=dict)


class SimulatorApp:
    """Answers one request at a time; safe to call from many server threads at once."""

    def __init__(self, book: FillBook, key: ApiKey, limiter: RateLimiter,
                 failures: RandomFault, latency_ms: int, retention_days: float | None,
                 truncator: RandomFault | None = None, html_errors: bool = False,
                 late: Sequence[dict[str, Any]] = ()):
        self._book = book
        self._key = key
        self._limiter = limiter
        self._failures = failures
        self._truncator = truncator or RandomFault(0.0, ())
        self._html_errors = html_errors
        self._late = tuple(late)
        self._latency = latency_ms / 1000
        self._retention = timedelta(days=retention_days) if retention_days is not None else None
        self._views: dict[tuple[int, str | None], Any] = {}
        self._counts: Counter[int] = Counter()
        self._truncated: Counter[str] = Counter()
        self._lock = threading.Lock()

    def stats(self) -> SimulatorStats:
        with self._lock:
            return SimulatorStats(sum(self._counts.values()), dict(self._counts),
                                  dict(self._truncated))

    def handle(self, method: str, target: str, host: str, authorization: str | None,
               body_error: str | None = None) -> Response:
        """Latency, then rate limit, then framing, authentication, injected errors, the API;
        a successful answer may then be marked to be cut off."""
        if self._latency:
            time.sleep(self._latency)
        decision = self._limiter.admit()
        if not decision.allowed:
            response = self._error(429, "too many requests")
            response.headers["retry-after"] = str(max(1, math.ceil(decision.reset_seconds)))
        elif body_error is not None:
            response = error_response(400, body_error)
        else:
            response = self._authorized(method, target, host, authorization)
        response.headers.update(decision.headers())
        truncation = self._truncator.next() if response.status == 200 else None
        with self._lock:
            self._counts[response.status] += 1
            if truncation is not None:
                self._truncated[truncation] += 1
        return replace(response, truncation=truncation) if truncation else response

    def _error(self, status: int, message: str) -> Response:
        """Throttling and server errors as JSON, or as HTML pages with ``html_errors``."""
        return error_response(status, message, html=self._html_errors)

    def _authorized(self, method: str, target: str, host: str,
                    authorization: str | None) -> Response:
        parts = urlsplit(target)
        try:
            verify_request_token(authorization, self._key, method, host, parts.path)
        except AuthError as exc:
            logger.debug("401 %s: %s", parts.path, exc)  # what failed; never the token
            return replace(UNAUTHORIZED, headers={})
        failure = self._failures.next()
        if failure is not None:
            return self._error(failure, "injected failure")
        try:
            return self._route(method, parts.path, parse_qs(parts.query, keep_blank_values=True))
        except QueryError as exc:
            return error_response(400, str(exc))

    def _route(self, method: str, path: str, params: dict[str, list[str]]) -> Response:
        if not path.startswith(ORDERS_PATH + "/") or path.count("/") != 6:
            return error_response(404, f"no such endpoint: {path}")
        if method != "GET":
            return error_response(405, f"{method} is not supported here")
        name = unquote(path[len(ORDERS_PATH) + 1:])
        if name == "fills":
            return self._list_fills(FillQuery.parse(params))
        if name == "batch":
            return self._list_orders(OrderQuery.parse(params))
        return self._get_order(name)

    def _cutoff(self) -> datetime | None:
        """Fills traded before this are past retention and no longer served; an order goes
        with its last fill."""
        return datetime.now(timezone.utc) - self._retention if self._retention else None

    def _cached(self, name: str | None, build: Callable[[tuple[StoredFill, ...]], Any]) -> Any:
        """A view derived from the book, rebuilt only when fills were added since."""
        version, fills = self._book.snapshot()
        view = self._views.get((version, name))
        if view is None:
            view = build(fills)
            # Threads may race to build the same view: both results are equal, either wins.
            self._views = {**{k: v for k, v in self._views.items() if k[0] == version},
                           (version, name): view}
        return view

    def _fills(self, sort_by: str | None) -> tuple[tuple[StoredFill, ...], list[StoredFill]]:
        """The fills by insertion index (to resolve cursors) and sorted for ``sort_by``."""
        return self._cached(sort_by, lambda fills: (fills, sorted(fills, key=FILL_SORTS[sort_by])))

    def _orders(self) -> OrdersView:
        """The orders newest first, and by id (for get order and cursors)."""
        def build(fills: tuple[StoredFill, ...]) -> OrdersView:
            orders = orders_from_fills(fills)
            return orders, {o.order_id: o for o in orders}
        return self._cached("orders", build)

    def _list_fills(self, query: FillQuery) -> Response:
        by_index, ordered = self._fills(query.sort_by)
        key = FILL_SORTS[query.sort_by]
        after_key = None
        if query.after is not None:
            if not 0 <= query.after < len(by_index):
                raise QueryError("invalid cursor")
            after_key = key(by_index[query.after])
        cutoff = self._cutoff()
        chunk, more = page_after(ordered, key, after_key, query.limit,
                                 lambda f: (cutoff is None or f.trade_time >= cutoff)
                                 and query.matches(f))
        cursor = encode_cursor(query.digest, chunk[-1].index) if more else ""
        if not more:
            self._release_late()
        return Response(200, {"fills": [f.fill for f in chunk], "cursor": cursor})

    def _release_late(self) -> None:
        """Late-sequenced fills join the book once a first listing has reached its end, so a
        first sync misses them and a later one must find them by ``sequence_timestamp``."""
        with self._lock:
            late, self._late = self._late, ()
        if late:
            self._book.add(late)

    def _list_orders(self, query: OrderQuery) -> Response:
        orders, by_id = self._orders()
        after_key = None
        if query.after is not None:
            if query.after not in by_id:
                raise QueryError("invalid cursor")
            after_key = _order_key(by_id[query.after])
        cutoff = self._cutoff()
        chunk, more = page_after(orders, _order_key, after_key, query.limit,
                                 lambda o: _visible(o, cutoff) and query.matches(o),
                                 descending=True)
        cursor = encode_cursor(query.digest, chunk[-1].order_id) if more else ""
        return Response(200, {"orders": [o.order for o in chunk], "sequence": "0",
                              "has_next": more, "cursor": cursor})

    def _get_order(self, order_id: str) -> Response:
        _, by_id = self._orders()
        order = by_id.get(order_id)
        if order is None or not _visible(order, self._cutoff()):
            return error_response(404, "order not found")
        return Response(200, {"order": order.order})


def _order_key(order: StoredOrder) -> tuple[datetime, str]:
    return order.created_time, order.order_id


def _visible(order: StoredOrder, cutoff: datetime | None) -> bool:
    return cutoff is None or order.last_fill_time >= cutoff
