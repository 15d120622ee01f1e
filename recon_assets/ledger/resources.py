"""``LedgerResource``: how assets, checks and sensors reach the ledger and ``$RECON_HOME``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from dagster import ConfigurableResource
from pydantic import Field

from recon_assets.errors import ConfigError
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import Settings, env_or_value, normalize_database_url

_STORES: dict[str, LedgerStore] = {}
_STORES_LOCK = threading.Lock()


def shared_store(url: str) -> LedgerStore:
    """One store (one connection pool) per URL per process, with its tables ensured once."""
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            store = LedgerStore(url)
            store.ensure_schema()
            _STORES[url] = store
        return store


class LedgerResource(ConfigurableResource):
    """The bot's ledger database and the recon home its reports and logs go to.

    Built once from the settings (:meth:`from_settings`): ``DATABASE_URL`` set in the
    environment becomes ``EnvVar("DATABASE_URL")``, so a password in it is resolved at run
    time and never shown in the UI; unset, the field holds the resolved absolute default
    ``sqlite:///$RECON_HOME/ledger.db``, so ``dagster dev`` from another directory and the CLI
    open the same file.
    """

    database_url: str = Field(description="The ledger (PostgreSQL or SQLite) URL.")
    recon_home: Optional[str] = Field(
        default=None, description="$RECON_HOME: reports and logs are written under it.")

    @classmethod
    def from_settings(cls, settings: Settings) -> "LedgerResource":
        """The resource for ``settings``; secrets stay environment variable references."""
        return cls(database_url=env_or_value("DATABASE_URL", settings.database_url),
                   recon_home=str(settings.recon_home))

    def get_store(self) -> LedgerStore:
        return shared_store(normalize_database_url(self.database_url))

    def _home(self) -> Path:
        if not self.recon_home:
            raise ConfigError("LedgerResource.recon_home is not set (build the resource with "
                              "LedgerResource.from_settings)")
        return Path(self.recon_home)

    def reports_dir(self) -> Path:
        """``$RECON_HOME/reports``: the CSV reports assets write."""
        return self._home() / "reports"

    def logs_dir(self) -> Path:
        """``$RECON_HOME/logs``: the reconciliation's JSONL logs."""
        return self._home() / "logs"
