import gc
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


@pytest.fixture(autouse=True, scope="module")
def _earlier_garbage_collected() -> None:
    """Collect what the modules before this one left to the garbage collector before its
    first test: Dagster's ephemeral instances (``materialize`` without an instance) hold a
    ``TemporaryDirectory`` each, which warns when it is collected, and this module's tests
    that turn every warning into an error (``filterwarnings("error")``) must see only
    warnings of their own, wherever the collector happens to run."""
    gc.collect()
