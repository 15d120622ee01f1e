"""``LedgerResource``: how assets, checks and sensors reach the ledger."""

from __future__ import annotations

import threading
from typing import Optional

from dagster import ConfigurableResource

from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import load_settings

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
    """The bot's ledger database.

    ``database_url`` is normally left unset so the URL comes from ``DATABASE_URL`` (or the
    embedded SQLite default) at run time: a URL with a password set here would show in the UI.
    """

    database_url: Optional[str] = None

    def get_store(self) -> LedgerStore:
        return shared_store(self.database_url or load_settings().database_url)
