from typing import Iterator

import pytest

from recon_assets.ledger.store import LedgerStore


@pytest.fixture
def store(ledger_url) -> Iterator[LedgerStore]:
    """A ledger (SQLite, then PostgreSQL) with its tables created."""
    store = LedgerStore(ledger_url)
    store.ensure_schema()
    yield store
    store.dispose()
