"""``ExchangeClient``: the one way recon-assets talks to Coinbase Advanced Trade.

It wraps the official SDK (``coinbase.rest.RESTClient``) and adds what the SDK leaves to its
callers: a timeout on every request, client-side pacing under the private rate limit (also
when the server's ``x-ratelimit-*`` headers come in another letter case), bounded retries with
jittered exponential backoff on 429/5xx, connection errors and answers cut off mid-body,
cursor paging with loop detection and resumable listings, and one clear
:class:`~recon_assets.errors.ExchangeError` line when it gives up. Errors and logs never
contain the secret or a JWT; the key name appears only in :attr:`ExchangeClient.source`, which
names the account the fills come from.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections import Counter
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import requests
from coinbase import jwt_generator
from coinbase.constants import API_PREFIX, BASE_URL
from coinbase.rest import RESTClient
from coinbase.rest.rest_base import handle_exception
from pyarrow import json as pa_json

from recon_assets.errors import ConfigError, ExchangeError
from recon_assets.exchange.models import api_time
from recon_assets.exchange.transport import (RETRIED_TRANSPORT_ERRORS, Pacer, RetryPolicy,
                                             failure_reason, mount_plain_http, reset_delay,
                                             transport_failure)

log = logging.getLogger(__name__)
T = TypeVar("T")
SDK_LOGGER = "coinbase.RESTClient"
FILLS_PATH = f"{API_PREFIX}/orders/historical/fills"
ORDERS_PATH = f"{API_PREFIX}/orders/historical/batch"
#: Client-side pacing: Coinbase allows about 30 private requests/s per key, and the bot trades
#: on the same key. Half of it leaves the bot the other half even while a sync pages flat out
#: (paging 200,000 fills takes about 13 s instead of 7 s). RECON_REQUESTS_PER_SECOND changes it.
DEFAULT_REQUESTS_PER_SECOND = 15.0


@dataclass(frozen=True)
class Page:
    """One page of a listing, and the server's cursor for the next (``None``: the last).

    A page of fills also holds its fills as Arrow's JSON reader parsed them from the answer
    (``arrow``: a struct array, one element per fill) when the answer had the usual layout:
    :func:`~recon_assets.exchange.models.normalize_arrow` then screens columns without a
    Python object per value, and ``items`` (the ``Fill`` dicts) are decoded from ``body``
    only when asked for (a page that is not plain, or a caller that wants dicts).
    """

    cursor: str | None
    count: int
    arrow: pa.StructArray | None = None
    body: bytes | None = None
    decoded: list[dict] | None = None

    @functools.cached_property
    def items(self) -> list[dict]:
        if self.decoded is not None:
            return self.decoded
        return list(json.loads(self.body or b"{}").get("fills") or [])


@dataclass(frozen=True)
class _FillsAnswer:
    """A ``get_fills`` answer that Arrow parsed: its page (with the server's cursor as sent)
    and ``has_next``."""

    page: Page
    has_next: bool | None


def _parsed_by_arrow(body: bytes) -> _FillsAnswer | None:
    """The answer parsed by Arrow's JSON reader (which releases the GIL, unlike ``json``),
    or ``None`` when it does not have the usual layout (one object whose ``fills`` is a
    list of objects, each field of one JSON type throughout, ``cursor`` text, ``has_next``
    a boolean): such an answer is decoded by ``json`` as before, errors included."""
    try:
        table = pa_json.read_json(pa.BufferReader(body), read_options=pa_json.ReadOptions(
            use_threads=False, block_size=max(len(body), 1) + 1),
            parse_options=pa_json.ParseOptions(newlines_in_values=True))
        table.validate(full=True)  # a null among the objects makes a malformed list (pyarrow 26)
    except pa.ArrowException:
        return None
    names = table.schema.names
    if table.num_rows != 1:  # not one JSON object
        return None
    kinds = {name: table.schema.field(name).type for name in names}
    if not all(pa.types.is_null(kinds.get(name, pa.null())) or check(kinds[name])
               for name, check in (("cursor", pa.types.is_string),
                                   ("has_next", pa.types.is_boolean))):
        return None
    head = {name: table.column(name)[0].as_py() for name in names if name != "fills"}
    fills = kinds.get("fills", pa.null())
    if pa.types.is_null(fills) or table.column("fills").null_count:
        listed = None
    elif pa.types.is_list(fills) and pa.types.is_struct(fills.value_type):
        listed = table.column("fills").combine_chunks().flatten()
    else:
        return None  # e.g. a list of nulls or numbers: json and the validation judge it
    page = Page(head.get("cursor"), 0 if listed is None else len(listed), listed, body)
    return _FillsAnswer(page, head.get("has_next"))


@dataclass(frozen=True)
class ClientStats:
    """Requests sent (including retries), retries, and outcomes by HTTP status or error kind."""

    requests: int = 0
    retries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def parse_base_url(base_url: str) -> tuple[str, bool]:
    """``(host[:port], plain_http)`` from ``http://h:p``, ``https://h[:p]`` or a bare host."""
    parts = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    try:
        port_ok = parts.port is None or parts.port > 0  # ValueError: not a number in 0-65535
    except ValueError:
        port_ok = False
    if (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
            or any(c.isspace() for c in parts.netloc) or parts.path not in ("", "/")):
        raise ConfigError(f"exchange URL must be http(s)://host[:port], got {base_url!r}")
    return parts.netloc, parts.scheme == "http"


class _DropSdkHttpErrors(logging.Filter):
    """The SDK logs each HTTP error at ERROR (through its own stderr handler) before raising.
    The client retries and then reports the outcome once, so those duplicate lines are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("HTTP Error:")


_SDK_FILTER = _DropSdkHttpErrors()


class ExchangeClient:
    """Coinbase Advanced Trade (or a compatible server such as the simulator) through the SDK.

    Credentials are a key name and secret, or a CDP JSON key file. ``base_url`` is
    ``http://host:port`` (plain HTTP, via :mod:`recon_assets.exchange.transport`),
    ``https://host[:port]`` or a bare host (TLS); the default is the real Coinbase API.
    ``source`` names the exchange and account the fills come from, so an archive never mixes
    two (see :attr:`source`).
    """

    def __init__(self, base_url: str = BASE_URL, *, api_key: str | None = None,
                 api_secret: str | None = None, key_file: Path | str | None = None,
                 timeout: float = 30.0, requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
                 retry: RetryPolicy = RetryPolicy(), seed: int | None = None,
                 source: str | None = None):
        host_port, plain_http = parse_base_url(base_url)
        self.origin = f"{'http' if plain_http else 'https'}://{host_port}"
        self.retry = retry
        self._rng = random.Random(seed)
        self._pacer = Pacer(requests_per_second)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        logging.getLogger(SDK_LOGGER).addFilter(_SDK_FILTER)  # a no-op when already added
        self._rest = _build_rest(host_port, api_key, api_secret, key_file, timeout)
        # The host and the key name identify the exchange and the account; the port does not
        # (a simulator restarted on another port with the same key is the same exchange).
        self._source = source or f"{urlsplit(self.origin).hostname} key {self._rest.api_key}"
        if plain_http:
            mount_plain_http(self._rest.session, host_port)
        self._rest.session.hooks["response"].append(self._on_response)

    # -- public API ----------------------------------------------------------------------------

    def iter_fills(self, product_ids: list[str] | None = None,
                   order_ids: list[str] | None = None,
                   start_sequence_timestamp: datetime | str | None = None,
                   end_sequence_timestamp: datetime | str | None = None,
                   page_size: int = 1000, max_pages: int = 10_000) -> Iterator[list[dict]]:
        """Yield every page of fills (``Fill`` dicts) matching the filters, following cursors."""
        pages = self.fill_pages(product_ids, order_ids, start_sequence_timestamp,
                                end_sequence_timestamp, page_size=page_size, max_pages=max_pages)
        return (page.items for page in pages)

    def fill_pages(self, product_ids: list[str] | None = None,
                   order_ids: list[str] | None = None,
                   start_sequence_timestamp: datetime | str | None = None,
                   end_sequence_timestamp: datetime | str | None = None, *,
                   cursor: str | None = None, page_size: int = 1000,
                   max_pages: int = 10_000) -> Iterator[Page]:
        """Like :meth:`iter_fills`, with each page's cursor, so a caller can commit page by page
        and later resume the same listing (same filters) at ``cursor``. A server that rejects
        that cursor (HTTP 400: expired, or from another query) gets the listing restarted from
        its first page instead."""
        params = dict(product_ids=product_ids, order_ids=order_ids, limit=page_size,
                      start_sequence_timestamp=_time_param(start_sequence_timestamp),
                      end_sequence_timestamp=_time_param(end_sequence_timestamp))
        return self._pages(FILLS_PATH, self._get_fills, "fills", params, max_pages, cursor)

    def list_orders(self, product_ids: list[str] | None = None,
                    order_ids: list[str] | None = None, order_status: list[str] | None = None,
                    start_date: datetime | str | None = None,
                    end_date: datetime | str | None = None,
                    page_size: int = 1000, max_pages: int = 10_000) -> list[dict]:
        """All orders (``Order`` dicts) matching the filters, every page."""
        params = dict(product_ids=product_ids, order_ids=order_ids, order_status=order_status,
                      start_date=_time_param(start_date), end_date=_time_param(end_date),
                      limit=page_size)
        pages = self._pages(ORDERS_PATH, self._rest.list_orders, "orders", params, max_pages)
        return [order for page in pages for order in page.items]

    def get_order(self, order_id: str) -> dict | None:
        """One order as a dict, or ``None`` when the exchange answers 404 (no such order)."""
        path = f"{API_PREFIX}/orders/historical/{order_id}"
        response = self._call(path, self._rest.get_order, {"order_id": order_id}, allow=(404,))
        return None if response is None else response.to_dict().get("order")

    @property
    def source(self) -> str:
        """Which exchange the fills come from: ``"<host> key <CDP key name>"`` unless given
        (the embedded demo simulator is ``"simulator"``). The key name identifies the
        account; the secret is never part of it."""
        return self._source

    @property
    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(self._counts["requests"], self._counts["retries"],
                               dict(self._by_status))

    def close(self) -> None:
        self._rest.session.close()

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _get_fills(self, **params: Any) -> _FillsAnswer | dict[str, Any]:
        """The SDK's ``get_fills`` request (same path, parameters, headers, JWT, session and
        HTTP error), answered as parsed by Arrow (:func:`_parsed_by_arrow`), else as its plain
        JSON dict decoded once (a body that is no JSON raises here, inside the retries).
        Building
        ``ListFillsResponse`` objects and turning them back with ``to_dict()`` costs more CPU
        per page of 1,000 fills than validating them, and the SDK's own ``send_request``
        decodes every answer twice, once to format the whole page into a debug message that
        is built even when debug logging is off (about 5 ms a page, holding the GIL)."""
        rest = self._rest
        response = rest.session.request(
            "GET", f"https://{rest.base_url}{FILLS_PATH}", json={},
            params={k: v for k, v in params.items() if v is not None},
            headers=rest.set_headers("GET", FILLS_PATH), timeout=rest.timeout)
        handle_exception(response)
        return _parsed_by_arrow(response.content) or response.json()

    def _pages(self, path: str, method: Callable[..., Any], key: str, params: dict[str, Any],
               max_pages: int, resume: str | None = None) -> Iterator[Page]:
        cursor = resume
        seen: set[str] = set()
        for page in range(1, max_pages + 1):
            response = self._call(path, method, {**params, "cursor": cursor},
                                  allow=(400,) if page == 1 and resume is not None else ())
            if response is None:
                log.warning("GET %s: the server rejected the stored cursor; restarting the "
                            "listing from its first page", path)
                cursor = resume = None
                response = self._call(path, method, {**params, "cursor": None})
            if isinstance(response, _FillsAnswer):
                listed, has_next = response.page, response.has_next
            else:
                body = response if isinstance(response, dict) else response.to_dict()
                items = list(body.get(key) or [])
                listed = Page(body.get("cursor"), len(items), decoded=items)
                has_next = body.get("has_next")
            cursor = None if has_next is False else listed.cursor or None
            yield dataclasses.replace(listed, cursor=cursor)
            if cursor is None:
                return
            if cursor in seen:
                raise ExchangeError(f"GET {path}: the server repeated a cursor after page {page}")
            seen.add(cursor)
        raise ExchangeError(f"GET {path}: still more pages after {max_pages}; giving up")

    def _call(self, path: str, method: Callable[..., T], params: dict[str, Any],
              allow: tuple[int, ...] = ()) -> T | None:
        """One SDK call with pacing and bounded retries; ExchangeError when it cannot succeed,
        ``None`` when the server answers one of the ``allow`` statuses."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._pacer.wait()
            self._bump(self._counts, "requests")
            try:
                result = method(**params)
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status in allow:
                    return None
                failure = f"HTTP {status} {failure_reason(exc.response)}".rstrip()
                if status != 429 and status < 500:
                    raise ExchangeError(f"GET {path}: {failure} (attempt {attempt})") from None
                delay = self._delay_after(attempt, exc.response)
            except RETRIED_TRANSPORT_ERRORS as exc:
                failure = transport_failure(exc)
                self._bump(self._by_status, failure)
                delay = self.retry.backoff(attempt, self._rng)
            except requests.RequestException as exc:
                raise ExchangeError(f"GET {path}: {type(exc).__name__}") from None
            else:
                return result
            elapsed = time.monotonic() - started
            if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_seconds:
                raise ExchangeError(f"GET {path} at {self.origin}: {failure} after {attempt} "
                                    f"attempts in {elapsed:.1f}s") from None
            self._bump(self._counts, "retries")
            log.info("GET %s: %s; retry %d in %.2fs", path, failure, attempt, delay)
            time.sleep(delay)

    def _delay_after(self, attempt: int, response: requests.Response | None) -> float:
        """Backoff, but on 429 at least until the server's announced reset: retrying sooner
        would only burn attempts (the time budget still bounds the wait)."""
        delay = self.retry.backoff(attempt, self._rng)
        if response is not None and response.status_code == 429:
            headers = response.headers
            reset = reset_delay(headers.get("x-ratelimit-reset") or headers.get("retry-after"))
            if reset is not None:
                delay = max(delay, reset)
        return delay

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Count the answer and honour its rate-limit headers. Read here, from requests'
        case-insensitive headers: the SDK copies them into a plain dict and looks up only the
        lowercase names, so ``X-RateLimit-Remaining`` would never reach it."""
        self._bump(self._by_status, str(response.status_code))
        if response.status_code < 400:
            self._respect_limits(response.headers)

    def _respect_limits(self, headers: Mapping[str, str]) -> None:
        """When the server says no requests remain, pause the pacer until its reset."""
        try:
            exhausted = float(headers.get("x-ratelimit-remaining", "nan")) <= 0
        except ValueError:
            return
        reset = reset_delay(headers.get("x-ratelimit-reset"))
        if exhausted and reset is not None:
            self._pacer.hold(min(reset, self.retry.max_seconds))

    def _bump(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1


def _time_param(value: datetime | str | None) -> str | None:
    return api_time(value) if isinstance(value, datetime) else value


def _build_rest(host_port: str, api_key: str | None, api_secret: str | None,
                key_file: Path | str | None, timeout: float) -> RESTClient:
    """The SDK client, with credentials checked now so a bad key fails before any request."""
    if key_file is not None and (api_key or api_secret):
        raise ConfigError("give either a Coinbase key file or an API key and secret, not both")
    try:
        if key_file is not None:
            # The SDK's defaults read COINBASE_API_KEY/SECRET; pass None or it refuses key_file.
            rest = RESTClient(api_key=None, api_secret=None, key_file=str(key_file),
                              base_url=host_port, timeout=timeout)
        elif api_key and api_secret:
            rest = RESTClient(api_key=api_key, api_secret=api_secret, base_url=host_port,
                              timeout=timeout)
        else:
            raise ConfigError("no Coinbase credentials: set COINBASE_API_KEY and "
                              "COINBASE_API_SECRET, or COINBASE_KEY_FILE")
    except ConfigError:
        raise
    except Exception as exc:  # the SDK raises bare Exception/OSError for unreadable key files
        raise ConfigError(f"cannot read Coinbase key file {key_file}: "
                          f"{type(exc).__name__}") from None
    try:
        jwt_generator.build_rest_jwt(f"GET {host_port}{API_PREFIX}", rest.api_key,
                                     rest.api_secret)
    except Exception:  # the SDK wraps every key-parsing failure in a bare Exception
        raise ConfigError("the Coinbase API secret is neither a PEM EC key nor a base64 "
                          "Ed25519 key") from None
    return rest
