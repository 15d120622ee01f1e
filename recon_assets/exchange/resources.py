"""``ExchangeResource``: how Dagster assets get an :class:`ExchangeClient`.

The resource holds no credentials. They are read from the environment (or ``.env``) through
:func:`recon_assets.settings.load_settings` when a run asks for a client, so they never end up
in run config, the UI or the event log. With no exchange configured and the embedded default
ledger (or ``RECON_EXCHANGE=simulator``), the client talks to an embedded simulator loaded with
the demo history, so a fresh machine works without secrets; any other ledger needs an exchange.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from dagster import ConfigurableResource
from pydantic import Field

from recon_assets.errors import ConfigError
from recon_assets.exchange.client import DEFAULT_REQUESTS_PER_SECOND, ExchangeClient
from recon_assets.exchange.transport import RetryPolicy
from recon_assets.exchange.simulator import Simulator
from recon_assets.settings import Settings, load_settings

_EMBEDDED: dict[Path, Simulator] = {}
_EMBEDDED_LOCK = threading.Lock()


def embedded_simulator(settings: Settings) -> Simulator:
    """The demo simulator for this ``RECON_HOME``, started on first use and kept for the process.

    Its key file lives at ``$RECON_HOME/simulator/key.json`` (created when absent); it serves
    from a daemon thread, so it never keeps a finished process alive.
    """
    key_file = settings.recon_home / "simulator" / "key.json"
    with _EMBEDDED_LOCK:
        simulator = _EMBEDDED.get(key_file)
        if simulator is None:
            from recon_assets.exchange.demo import demo_history

            simulator = Simulator(demo_history().fills, key_file).start()
            _EMBEDDED[key_file] = simulator
        return simulator


def check_configured(settings: Settings) -> None:
    """Raise ConfigError (one line: what to configure) when no exchange may be used: a ledger
    other than the embedded default with no exchange set must never get the demo's fills."""
    if settings.exchange_mode == "unconfigured":
        raise ConfigError(
            "no exchange configured for this ledger (DATABASE_URL is not the embedded demo "
            "ledger): set COINBASE_KEY_FILE (or COINBASE_API_KEY and COINBASE_API_SECRET) for "
            "Coinbase, RECON_EXCHANGE_URL with COINBASE_KEY_FILE for another server, or "
            "RECON_EXCHANGE=simulator to use the embedded demo simulator on purpose")


def client_for(settings: Settings, requests_per_second: float | None = None,
               retry: RetryPolicy = RetryPolicy()) -> ExchangeClient:
    """The client ``settings.exchange_mode`` asks for: real Coinbase, a URL, or embedded.

    Pacing: ``requests_per_second`` when given, else ``RECON_REQUESTS_PER_SECOND``, else
    :data:`~recon_assets.exchange.client.DEFAULT_REQUESTS_PER_SECOND`.
    """
    check_configured(settings)
    mode = settings.exchange_mode
    pace = requests_per_second or settings.requests_per_second or DEFAULT_REQUESTS_PER_SECOND
    tuning = {"requests_per_second": pace, "retry": retry}
    if mode == "coinbase":
        return ExchangeClient(api_key=settings.coinbase_api_key,
                              api_secret=settings.coinbase_api_secret,
                              key_file=settings.coinbase_key_file, **tuning)
    if mode == "url":
        return ExchangeClient(settings.exchange_url or "", key_file=settings.coinbase_key_file,
                              **tuning)
    simulator = embedded_simulator(settings)
    return ExchangeClient(simulator.url, key_file=simulator.key_file, source="simulator",
                          **tuning)


class ExchangeResource(ConfigurableResource):
    """The exchange for assets; only non-secret tuning is configurable."""

    requests_per_second: Optional[float] = Field(
        default=None, gt=0,
        description="Client-side request pacing; unset: RECON_REQUESTS_PER_SECOND, else "
                    f"{DEFAULT_REQUESTS_PER_SECOND:g}/s (Coinbase allows about 30/s per "
                    "private key, shared with the bot's own trading).")
    max_attempts: int = Field(
        default=RetryPolicy.max_attempts, ge=1,
        description="Attempts per request (429, 5xx, connection errors and timeouts are "
                    "retried with jittered exponential backoff).")
    max_retry_seconds: float = Field(
        default=RetryPolicy.max_seconds, gt=0,
        description="Time budget per request, retries included; then the run fails.")

    def check_configured(self) -> None:
        """ConfigError (exit 2) when no exchange may be used; assets that need the exchange
        call it before they write anything, so a refused run leaves the ledger untouched."""
        check_configured(load_settings())

    def get_client(self) -> ExchangeClient:
        """A new client over the configured exchange; credentials are read now, not stored."""
        retry = RetryPolicy(max_attempts=self.max_attempts, max_seconds=self.max_retry_seconds)
        return client_for(load_settings(), self.requests_per_second, retry)
