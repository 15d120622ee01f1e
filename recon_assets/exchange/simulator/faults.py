"""Injected faults: the rate limit, random server errors and cut-off answers a client must survive.

Both take their clock or random source from the caller, so their behaviour can be checked
exactly in tests instead of by racing real time.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

#: What the headers advertise when no limit is enforced: Coinbase's private REST limit.
ADVERTISED_LIMIT = 30
WINDOW_SECONDS = 1.0
SERVER_ERRORS = (500, 502, 503)


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may proceed, and the ``x-ratelimit-*`` values to send with it."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float

    def headers(self) -> dict[str, str]:
        """Lowercase names: the SDK looks them up case-sensitively."""
        return {"x-ratelimit-limit": str(self.limit),
                "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-reset": f"{self.reset_seconds:.3f}"}


class RateLimiter:
    """At most ``limit`` served requests in any sliding window of one second.

    Rejected requests do not count, so a client that waits ``x-ratelimit-reset`` seconds is
    served again. With ``limit`` None nothing is rejected and the headers advertise
    :data:`ADVERTISED_LIMIT`, like the real exchange's generous default.
    """

    def __init__(self, limit: int | None, clock: Callable[[], float] = time.monotonic):
        if limit is not None and limit < 1:
            raise ValueError("rate limit must be at least 1 request per second")
        self._limit = limit
        self._clock = clock
        self._served: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self) -> RateDecision:
        with self._lock:
            now = self._clock()
            while self._served and self._served[0] <= now - WINDOW_SECONDS:
                self._served.popleft()
            limit = self._limit if self._limit is not None else ADVERTISED_LIMIT
            allowed = self._limit is None or len(self._served) < self._limit
            if allowed:
                self._served.append(now)
            reset = self._served[0] + WINDOW_SECONDS - now if self._served else 0.0
            return RateDecision(allowed, limit, max(0, limit - len(self._served)), reset)


#: How an answer is cut off: ``short`` sends a ``Content-Length`` larger than the body it
#: writes and closes (``ChunkedEncodingError`` in ``requests``), ``cut`` frames a cut body
#: correctly (truncated JSON), ``reset`` aborts the connection with a TCP reset.
TRUNCATIONS = ("short", "cut", "reset")


class RandomFault:
    """Picks one of ``choices`` for a fraction ``rate`` of requests (seeded), else None.

    The simulator's random faults: a server error (:data:`SERVER_ERRORS`, ``--fail-rate``) or
    a way to cut an answer off (:data:`TRUNCATIONS`, ``--truncate-rate``).
    """

    def __init__(self, rate: float, choices: tuple, seed: int | None = None,
                 what: str = "fault rate"):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{what} must be between 0 and 1")
        self._rate = rate
        self._choices = choices
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def next(self) -> Any:
        """The fault for this request, or None to serve it as it is."""
        if self._rate == 0.0:
            return None
        with self._lock:
            if self._random.random() < self._rate:
                return self._random.choice(self._choices)
            return None


def failure_injector(rate: float, seed: int | None = None) -> RandomFault:
    """Answers a fraction ``rate`` of requests with a random 500, 502 or 503."""
    return RandomFault(rate, SERVER_ERRORS, seed, "fail rate")


def truncator(rate: float, seed: int | None = None) -> RandomFault:
    """Cuts off a fraction ``rate`` of successful answers, each in one of :data:`TRUNCATIONS`."""
    return RandomFault(rate, TRUNCATIONS, seed, "truncate rate")
