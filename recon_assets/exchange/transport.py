"""How requests travel: plain HTTP for the simulator, pacing, and the retry backoff curve.

``coinbase-advanced-py`` always requests ``https://{base_url}{path}`` and signs
``"METHOD {base_url}{path}"`` into the JWT ``uri`` claim. Giving it ``base_url="HOST:PORT"``
keeps the signature right; this adapter, mounted on the SDK's own ``requests`` session for
exactly that origin, swaps the scheme to ``http`` just before the request leaves. Nothing else
in the project touches URLs, so real Coinbase traffic always stays on TLS.

The pacing and backoff helpers live here too, with the failures worth retrying: they are about
when and how a request travels, not about what it asks, and
:class:`~recon_assets.exchange.client.ExchangeClient` composes them.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from http.client import IncompleteRead
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError


class PlainHttpAdapter(HTTPAdapter):
    """Sends ``https://HOST:PORT/...`` requests as ``http://HOST:PORT/...``."""

    def __init__(self, host_port: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.https_prefix = f"https://{host_port}/"
        self.http_prefix = f"http://{host_port}/"

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.lower().startswith(self.https_prefix.lower()):
            request.url = self.http_prefix + url[len(self.https_prefix):]
        return super().send(request, **kwargs)


def mount_plain_http(session: requests.Session, host_port: str) -> None:
    """Route this session's ``https://host_port/`` requests over plain HTTP (and only those)."""
    adapter = PlainHttpAdapter(host_port)
    session.mount(adapter.https_prefix, adapter)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request, a time budget, and the backoff curve (seconds)."""

    max_attempts: int = 6
    max_seconds: float = 60.0
    base_delay: float = 0.25
    max_delay: float = 8.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so clients spread."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def reset_delay(reset: Any) -> float | None:
    """Seconds until an ``x-ratelimit-reset`` value: seconds to wait, or a Unix timestamp."""
    try:
        value = float(reset)
    except (TypeError, ValueError):
        return None
    if value > 1e12:  # epoch milliseconds
        value = value / 1000 - time.time()
    elif value > 1e9:  # epoch seconds
        value -= time.time()
    return max(0.0, value)


class Pacer:
    """Spaces request starts at least ``1/rps`` apart across threads; can pause until a time."""

    def __init__(self, requests_per_second: float):
        self.interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            time.sleep(start - now)

    def hold(self, seconds: float) -> None:
        with self.lock:
            self.next_at = max(self.next_at, time.monotonic() + seconds)


#: Failures on the way (not answers): retried like 5xx. A body cut off mid-stream surfaces as
#: ``ChunkedEncodingError`` (urllib3 ``ProtocolError``/``IncompleteRead`` underneath, raw when
#: read outside ``requests``) or, when the cut body was framed as whole, as a JSON decode error.
RETRIED_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout,
                            requests.exceptions.ChunkedEncodingError,
                            requests.exceptions.ContentDecodingError,
                            requests.exceptions.JSONDecodeError, ProtocolError, IncompleteRead)


def transport_failure(exc: Exception) -> str:
    """A short name for a failed transfer, as counted in ``stats.by_status`` and reported."""
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return "answer not JSON (cut off?)"
    if isinstance(exc, requests.ConnectionError):
        return "connection error"
    return "answer cut off"


def failure_reason(response: requests.Response | None) -> str:
    """The status reason and the server's own short message (JSON ``message``/``error``).

    Any other body (Coinbase's plain-text ``Unauthorized``, a proxy's HTML page for a 429 or
    5xx) is left out, so the failure stays one readable line."""
    if response is None:
        return ""
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error") or "")[:200]
    except ValueError:
        pass
    return f"{response.reason or ''}{': ' + message if message else ''}"
