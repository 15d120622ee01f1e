"""Checks every command makes before it starts a Dagster run.

A mistake on the command line (a version that does not exist, a symbol the ledger has no
order for, a version that may not be rewritten) is answered with one line and exit 2, and
leaves no run behind: a failed run in the UI would look like a pipeline problem, and a run
of a made-up partition would add that partition to ``fifo_versions``.
"""

from __future__ import annotations

from typing import Sequence

from recon_assets.errors import ConfigError, VersionError
from recon_assets.ledger import versions
from recon_assets.ledger.store import LedgerStore


def check_ledger_symbols(store: LedgerStore, symbols: Sequence[str]) -> None:
    """Refuse a ``--symbol`` the ledger has no order for: FIFO over it would write an empty
    version that looks like a real one."""
    if not symbols:
        return
    known, _problems = store.symbol_census()
    unknown = sorted(set(symbols) - set(known))
    if unknown:
        raise ConfigError(f"--symbol: the ledger has no orders for "
                          f"{', '.join(map(repr, unknown))} (symbols there: "
                          f"{', '.join(known) or 'none'}); nothing computed")


def check_writable(store: LedgerStore, version: int, replace: bool) -> None:
    """``fifo --version N``: N must be new, or (with ``--replace``) not yet validated."""
    with store.connect() as conn:
        info = versions.get_version(conn, version)
    if info is None:
        return  # a new number is written as asked (--replace of it changes nothing)
    if not replace:
        raise VersionError(f"FIFO version {version} exists; pass --replace to recompute it "
                           "(only while it is not validated)")
    if info.status == versions.STATUS_VALIDATED:
        raise VersionError(f"FIFO version {version} is validated and immutable; compute a "
                           "new version instead (recon-assets fifo)")
