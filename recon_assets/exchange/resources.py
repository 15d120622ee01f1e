"""``ExchangeResource``: how Dagster assets get an :class:`ExchangeClient`.

The resource is built once from the settings (:meth:`ExchangeResource.from_settings`). Its
credentials and URL are ``dg.EnvVar`` references when they come from the environment, resolved
when a run starts, so they never end up in run config, the UI or the event log. With no
exchange configured and the embedded default ledger (or ``RECON_EXCHANGE=simulator``), the
client talks to an embedded simulator loaded with the demo history, so a fresh machine works
without secrets; any other ledger needs an exchange.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal, Optional

from dagster import ConfigurableResource
from pydantic import Field

from recon_assets.errors import ConfigError
from recon_assets.exchange.client import DEFAULT_REQUESTS_PER_SECOND, ExchangeClient
from recon_assets.exchange.transport import RetryPolicy
from recon_assets.exchange.simulator import Simulator
from recon_assets.settings import Settings, env_or_value

_EMBEDDED: dict[Path, Simulator] = {}
_EMBEDDED_LOCK = threading.Lock()

UNCONFIGURED_MESSAGE = (
    "no exchange configured for this ledger (DATABASE_URL is not the embedded demo "
    "ledger): set COINBASE_KEY_FILE (or COINBASE_API_KEY and COINBASE_API_SECRET) for "
    "Coinbase, RECON_EXCHANGE_URL with COINBASE_KEY_FILE for another server, or "
    "RECON_EXCHANGE=simulator to use the embedded demo simulator on purpose")


def embedded_simulator(recon_home: Path) -> Simulator:
    """The demo simulator for this ``RECON_HOME``, started on first use and kept for the process.

    Its key file lives at ``$RECON_HOME/simulator/key.json`` (created when absent); it serves
    from a daemon thread, so it never keeps a finished process alive.
    """
    key_file = recon_home / "simulator" / "key.json"
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
        raise ConfigError(UNCONFIGURED_MESSAGE)


class ExchangeResource(ConfigurableResource):
    """The exchange for assets: which one (``mode``), its credentials (environment variable
    references) and the client's pacing and retries."""

    mode: Literal["coinbase", "url", "embedded", "unconfigured"] = Field(
        description="coinbase (real credentials), url (a compatible server), embedded (the "
                    "demo simulator) or unconfigured (runs that need the exchange refuse).")
    recon_home: str = Field(description="$RECON_HOME: the embedded simulator's key lives here.")
    exchange_url: Optional[str] = Field(default=None, description="RECON_EXCHANGE_URL.")
    api_key: Optional[str] = Field(default=None, description="COINBASE_API_KEY.")
    api_secret: Optional[str] = Field(default=None, description="COINBASE_API_SECRET.")
    key_file: Optional[str] = Field(default=None, description="COINBASE_KEY_FILE.")
    requests_per_second: float = Field(
        default=DEFAULT_REQUESTS_PER_SECOND, gt=0,
        description="Client-side request pacing (RECON_REQUESTS_PER_SECOND; Coinbase allows "
                    "about 30/s per private key, shared with the bot's own trading).")
    max_attempts: int = Field(
        default=RetryPolicy.max_attempts, ge=1,
        description="Attempts per request (429, 5xx, connection errors and timeouts are "
                    "retried with jittered exponential backoff).")
    max_retry_seconds: float = Field(
        default=RetryPolicy.max_seconds, gt=0,
        description="Time budget per request, retries included; then the run fails.")

    @classmethod
    def from_settings(cls, settings: Settings, **tuning: Any) -> "ExchangeResource":
        """The resource for ``settings``; ``tuning`` overrides pacing and retry fields."""
        fields: dict[str, Any] = {
            "mode": settings.exchange_mode,
            "recon_home": str(settings.recon_home),
            "exchange_url": env_or_value("RECON_EXCHANGE_URL", settings.exchange_url),
            "api_key": env_or_value("COINBASE_API_KEY", settings.coinbase_api_key),
            "api_secret": env_or_value("COINBASE_API_SECRET", settings.coinbase_api_secret),
            "key_file": env_or_value("COINBASE_KEY_FILE", settings.coinbase_key_file
                                     and str(settings.coinbase_key_file)),
            "requests_per_second": settings.requests_per_second or DEFAULT_REQUESTS_PER_SECOND,
        }
        return cls(**{**fields, **tuning})

    def check_configured(self) -> None:
        """ConfigError (exit 2) when no exchange may be used; assets that need the exchange
        call it before they write anything, so a refused run leaves the ledger untouched."""
        if self.mode == "unconfigured":
            raise ConfigError(UNCONFIGURED_MESSAGE)

    def get_client(self) -> ExchangeClient:
        """A new client over the configured exchange, paced and retried as configured."""
        self.check_configured()
        retry = RetryPolicy(max_attempts=self.max_attempts, max_seconds=self.max_retry_seconds)
        tuning = {"requests_per_second": self.requests_per_second, "retry": retry}
        key_file = Path(self.key_file) if self.key_file else None
        if self.mode == "coinbase":
            return ExchangeClient(api_key=self.api_key, api_secret=self.api_secret,
                                  key_file=key_file, **tuning)
        if self.mode == "url":
            return ExchangeClient(self.exchange_url or "", key_file=key_file, **tuning)
        simulator = embedded_simulator(Path(self.recon_home))
        return ExchangeClient(simulator.url, key_file=simulator.key_file, source="simulator",
                              **tuning)
