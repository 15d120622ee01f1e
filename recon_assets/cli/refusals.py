"""Checks ``fifo`` makes before it starts a Dagster run (the other commands' are
``service.resolve_version`` and ``service.plan_new_version``, which refuses unknown symbols).

A mistake on the command line (a version that may not be rewritten) is answered with one line and exit 2, and
leaves no run behind: a failed run in the UI would look like a pipeline problem, and a run
of a made-up partition would add that partition to ``fifo_versions``.
"""

from __future__ import annotations

from recon_assets.errors import VersionError
from recon_assets.ledger import versions
from recon_assets.ledger.store import LedgerStore


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
