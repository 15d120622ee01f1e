"""Schema migrations for recon-assets' own tables (Alembic), run by ``LedgerStore.ensure_schema``.

``trade_records`` belongs to the bot and no revision ever touches it. The revision applied to a
ledger is kept in :data:`VERSION_TABLE`, a name of our own, so it cannot clash with the bot's
own Alembic ``alembic_version`` in the same database.

A fresh ledger gets its tables from ``create_all`` (they are defined at the newest revision in
:mod:`recon_assets.ledger.schema`) and is stamped at head; a ledger created before migrations
existed (our tables, no version table) is stamped at :data:`BASELINE` and upgraded from there.
Everything runs on the caller's connection, inside its transaction.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection

from recon_assets.errors import LedgerError

VERSION_TABLE = "recon_assets_alembic_version"
#: The schema as released before migrations existed (backfill_requests unique on order_id).
BASELINE = "0001_baseline"


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = conn
    return config


def current_revision(conn: Connection) -> str | None:
    """The revision the ledger's own tables are at (None: never stamped)."""
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(conn: Connection, *, fresh: bool) -> None:
    """Bring recon-assets' tables to the newest revision.

    ``fresh``: the tables were all just created from the current definitions, so they are
    only stamped. A revision this release does not know (a newer recon-assets migrated the
    ledger) raises :class:`LedgerError` instead of guessing.
    """
    config = _config(conn)
    current = current_revision(conn)
    try:
        head = ScriptDirectory.from_config(config).get_current_head()
        if current == head:
            return
        if current is None:
            if fresh:
                command.stamp(config, "head")
                return
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
    except CommandError as exc:
        raise LedgerError(f"cannot migrate recon-assets' tables (at revision {current}): "
                          f"{exc}; is this recon-assets older than the one that last ran?"
                          ) from None
