"""The HTTP side: a threaded stdlib server around :class:`SimulatorApp`, run in the background.

Plain HTTP on 127.0.0.1 by default: it only ever holds demo or test data, and the SDK
reaches it through a transport adapter (it always builds ``https://`` URLs).
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from recon_assets.errors import ConfigError
from recon_assets.exchange.simulator.app import SimulatorApp, SimulatorStats
from recon_assets.exchange.simulator.book import FillBook
from recon_assets.exchange.simulator.faults import RateLimiter, failure_injector, truncator
from recon_assets.exchange.simulator.inject import inject as inject_fills
from recon_assets.exchange.simulator.keys import ApiKey, ensure_key_file

logger = logging.getLogger(__name__)

#: How often the serving thread looks for a stop request; bounds how long ``stop()`` takes.
STOP_POLL_SECONDS = 0.05


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as the SDK's ``requests`` session expects."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle keep-alive connection may hold a thread
    # Headers and body go out in two writes; with Nagle on, the second waits for a delayed
    # ACK and every request costs ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def _handle(self) -> None:
        response = self.server.app.handle(self.command, self.path,
                                          self.headers.get("Host", ""),
                                          self.headers.get("Authorization"),
                                          body_error=self._read_body())
        # Only method, path and status: never headers (the bearer token) or the query.
        # Logged before answering, so the line exists by the time the client has its answer.
        logger.info("%s %s %d", self.command, urlsplit(self.path).path, response.status)
        if response.truncation == "reset":
            # Linger 0: closing sends a TCP reset instead of an orderly shutdown.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        body = (response.body.encode() if isinstance(response.body, str)
                else json.dumps(response.body, separators=(",", ":")).encode())
        sent = body[:len(body) // 2] if response.truncation else body
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("content-type", response.content_type)
        # "short" announces the whole body and sends half; "cut" frames the half correctly.
        self.send_header("content-length", str(len(sent if response.truncation == "cut"
                                                   else body)))
        self.end_headers()
        self.wfile.write(sent)
        if response.truncation == "short":
            self.close_connection = True

    def _read_body(self) -> str | None:
        """Consume the body (the SDK sends ``{}`` even on GET) so keep-alive stays in sync;
        say what is wrong when it cannot be framed."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return "a body needs a valid Content-Length"
        self.rfile.read(length)
        return None

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by :meth:`_handle`, with the query left out."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SimulatorApp):
        self.app = app
        super().__init__(address, _Handler)


class Simulator:
    """A Coinbase Advanced Trade look-alike serving ``fills`` over real HTTP.

    ``key_file`` is the CDP JSON key clients must sign with; it is created (EC, mode 0600)
    when absent. Faults: ``rate_limit`` requests per sliding second (429 beyond),
    ``fail_rate`` share of random 500/502/503 (reproducible with ``seed``), ``latency_ms``
    added to every answer, ``retention_days`` after which fills (and orders whose last fill
    is that old) are no longer served, ``truncate_rate`` share of successful answers cut off
    (:data:`~.faults.TRUNCATIONS`), ``html_errors`` to answer 429 and 5xx with HTML pages;
    ``inject`` adds Coinbase's less tidy fills (:mod:`~.inject`, seeded by ``seed`` too).
    Use as a context manager or ``start()``/``stop()``.
    """

    def __init__(self, fills: Iterable[dict[str, Any]], key_file: Path, host: str = "127.0.0.1",
                 port: int = 0, rate_limit: int | None = None, fail_rate: float = 0.0,
                 latency_ms: int = 0, retention_days: float | None = None,
                 seed: int | None = None, truncate_rate: float = 0.0,
                 html_errors: bool = False, inject: Sequence[str] = ()):
        if latency_ms < 0:
            raise ValueError("latency must not be negative")
        self.key_file = Path(key_file)
        self.key: ApiKey = ensure_key_file(self.key_file)
        injected = inject_fills(fills, inject, seed)
        self._book = FillBook(injected.served)
        self._app = SimulatorApp(self._book, self.key, RateLimiter(rate_limit),
                                 failure_injector(fail_rate, seed), latency_ms, retention_days,
                                 truncator(truncate_rate, seed), html_errors, injected.late)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Simulator:
        """Listen and serve from a daemon thread; returns self for chaining."""
        if self._server is not None:
            return self
        try:
            self._server = _Server(self._address, self._app)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self._address[0]}:{self._address[1]}: "
                              f"{exc.strerror}") from None
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": STOP_POLL_SECONDS},
                                        name=f"coinbase-simulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_fills(self, fills: Iterable[dict[str, Any]]) -> None:
        """Append fills while serving (thread-safe), as new trades appear on the exchange."""
        self._book.add(fills)

    @property
    def stats(self) -> SimulatorStats:
        return self._app.stats()
