"""Dagster's own storage for ``deploy/dagster.yaml``: dagster-postgres, whatever URL form.

``DAGSTER_PG_URL`` is written the way libpq and the bot's ``DATABASE_URL`` are:
``postgresql://`` or ``postgres://``. dagster-postgres needs psycopg2: SQLAlchemy 2.1 maps
``postgresql://`` to psycopg 3, under which the event log's ``NOTIFY run_events, %(id)s``
fails (``syntax error at or near "$1"``), and ``postgres://`` names no SQLAlchemy dialect at
all. :class:`PostgresStorage` is dagster-postgres' storage with its URL pinned to psycopg2, so
the CLI, the webserver, the daemon and the run workers all open the same working driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from recon_assets.errors import ConfigError
from recon_assets.settings import normalize_database_url

if TYPE_CHECKING:  # Dagster exports it only from a private module
    from dagster._serdes import ConfigurableClassData


def psycopg2_url(url: str) -> str:
    """``postgres://``, ``postgresql://`` or ``postgresql+<driver>://`` as a psycopg2 URL."""
    try:
        parsed = make_url(normalize_database_url(url))
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"DAGSTER_PG_URL is not a database URL ({exc})") from None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"DAGSTER_PG_URL must be a PostgreSQL URL (postgresql://...), not "
                          f"{parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


class PostgresStorage(DagsterPostgresStorage):
    """``storage: custom: {module: recon_assets.instance_storage, class: PostgresStorage}``,
    configured exactly like dagster-postgres (``postgres_url`` or ``postgres_db``)."""

    @classmethod
    def from_config_value(  # type: ignore[override]
            cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PostgresStorage:
        return cls(inst_data=inst_data,
                   postgres_url=psycopg2_url(pg_url_from_config(config_value)),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))
