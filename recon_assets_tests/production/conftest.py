"""A production Dagster instance for each test: ``deploy/dagster.yaml`` copied into a fresh
``DAGSTER_HOME``, storing runs, events and schedules in a fresh PostgreSQL database."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, make_url, text

from recon_assets_tests.conftest import PG_BASE_URL

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture
def dagster_pg_url() -> Iterator[str]:
    """A ``postgresql+psycopg2://`` URL of a new, empty database, dropped afterwards."""
    name = f"recon_dagster_test_{uuid.uuid4().hex[:12]}"
    base = make_url(PG_BASE_URL)
    admin = create_engine(base.set(drivername="postgresql+psycopg2"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(drivername="postgresql+psycopg2", database=name).render_as_string(
        hide_password=False)
    with admin.connect() as conn:  # FORCE: a webserver or daemon may have left connections
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def production_home(tmp_path, monkeypatch, dagster_pg_url) -> Path:
    """``DAGSTER_HOME`` holding a copy of ``deploy/dagster.yaml``, with ``DAGSTER_PG_URL``
    set, exactly as README.md, section Production tells an operator to do."""
    home = tmp_path / "dagster_production"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    return home


def pg_rows(url: str, sql: str, **params: Any) -> list[Any]:
    """Rows of one query on the Dagster database, read with plain SQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()
