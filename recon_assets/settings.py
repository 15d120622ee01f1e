"""The one place that reads configuration (SPEC section 1).

Environment variables win over a ``.env`` file in the working directory. Nothing reads the
environment at import time: call :func:`load_settings` once at the edge (the CLI, and
``build_definitions`` for the resources).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from recon_assets.errors import ConfigError

#: Variables whose values are secrets: never logged, shown or stored.
SECRET_VARIABLES = (
    "COINBASE_API_SECRET",
    "RECON_SLACK_WEBHOOK_URL",
    "RECON_SMTP_PASSWORD",
)

#: The ledger databases (SPEC section 2).
SUPPORTED_DATABASES = ("postgresql", "sqlite")

#: Values of ``RECON_EXCHANGE``; unset means "the configured exchange, or the embedded
#: simulator for the embedded default ledger".
EXCHANGE_CHOICES = ("simulator",)


@dataclass(frozen=True)
class AlertSettings:
    """Alert channels; each is optional and off when its variables are unset."""

    slack_webhook_url: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    alert_from: str | None = None
    alert_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything recon-assets needs to know about its surroundings, read once."""

    recon_home: Path
    database_url: str
    dagster_home: Path
    coinbase_api_key: str | None = field(default=None, repr=False)
    coinbase_api_secret: str | None = field(default=None, repr=False)
    coinbase_key_file: Path | None = None
    exchange_url: str | None = None
    #: ``RECON_EXCHANGE``: ``simulator`` opts any ledger into the embedded demo simulator.
    exchange: str | None = None
    #: ``database_url`` is the embedded default ledger, ``$RECON_HOME/ledger.db``.
    embedded_ledger: bool = False
    #: ``RECON_REQUESTS_PER_SECOND``: client pacing; None means the client's default.
    requests_per_second: float | None = None
    alerts: AlertSettings = AlertSettings()
    schedule_timezone: str = "UTC"
    weekly_cron: str = "15 9 * * 0"
    daily_pnl_cron: str = "5 9 * * *"
    daily_validation_cron: str = "10 9 * * *"
    executor: str = "in_process"  # recon_assets.execution: in_process | multiprocess | celery
    celery_broker: str | None = field(default=None, repr=False)
    celery_backend: str | None = field(default=None, repr=False)

    @property
    def exchange_mode(self) -> str:
        """``coinbase`` (real credentials), ``url`` (a compatible server), ``embedded`` (the
        demo simulator) or ``unconfigured``.

        The demo simulator serves only the embedded default ledger or an explicit
        ``RECON_EXCHANGE=simulator`` (SPEC section 1): anywhere else its demo fills would land
        in a real archive and backfill orders that never existed.
        """
        if self.exchange_url:
            return "url"
        if self.coinbase_api_key or self.coinbase_key_file:
            return "coinbase"
        if self.exchange == "simulator" or self.embedded_ledger:
            return "embedded"
        return "unconfigured"

    @property
    def logs_dir(self) -> Path:
        return self.recon_home / "logs"

    def secrets(self) -> list[str]:
        """The secret values in force, so output can be checked or scrubbed for them."""
        values = [self.coinbase_api_secret, self.alerts.slack_webhook_url,
                  self.alerts.smtp_password, self.celery_broker, self.celery_backend]
        return [v for v in values if v]


def env_or_value(name: str, value: str | None) -> Any:
    """``dg.EnvVar(name)`` when the process environment holds ``value`` under ``name`` (the
    resource then resolves it at run time and the UI shows only the name), else ``value``
    itself (it came from ``.env`` or a test's mapping, or is a computed default)."""
    import dagster as dg

    raw = os.environ.get(name)
    if value is not None and raw and (raw == value or normalize_database_url(raw) == value):
        return dg.EnvVar(name)
    return value


def current_user() -> str:
    """Who is acting, for the backfill audit trail: the login name (``getpass`` reads
    LOGNAME/USER/... then the password database), or ``recon-assets`` where there is none
    (containers, cron)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError depending on the platform
        return "recon-assets"


def normalize_database_url(url: str) -> str:
    """Accept ``postgres://`` as ``postgresql://`` (libpq style, as Heroku and the bot use)."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://"):]
    return url


def check_database_url(url: str) -> None:
    """ConfigError for a ``DATABASE_URL`` that cannot name a ledger: not a URL, a database
    other than PostgreSQL or SQLite, or a driver that is not installed. A wrong URL is the
    user's to fix (exit 2), not a database failure (exit 3); the message never repeats the
    URL, which may hold a password."""
    expected = "postgresql://user:password@host:5432/db or sqlite:///path/to/ledger.db"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise ConfigError(f"DATABASE_URL is not a database URL ({exc}); expected "
                          f"{expected}") from None
    if parsed.get_backend_name() not in SUPPORTED_DATABASES:
        raise ConfigError(f"DATABASE_URL names a {parsed.get_backend_name()!r} database; the "
                          f"ledger is PostgreSQL or SQLite: {expected}")
    try:
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"DATABASE_URL asks for the driver {parsed.drivername!r}, which is "
                          f"not available ({exc}); use {expected}") from None


def check_exchange_url(url: str) -> None:
    """ConfigError for a ``RECON_EXCHANGE_URL`` the client would refuse, or could only fail
    on request by request with retries; the client's own URL rule decides."""
    from recon_assets.exchange.client import parse_base_url

    try:
        parse_base_url(url)
    except ConfigError as exc:
        raise ConfigError(f"RECON_EXCHANGE_URL is invalid: {exc}") from None


def is_embedded_ledger(database_url: str, recon_home: Path, cwd: Path) -> bool:
    """Whether ``database_url`` names ``$RECON_HOME/ledger.db`` itself, however it is spelled
    (a relative path is relative to ``cwd``, as SQLite opens it); ``database_url`` has passed
    :func:`check_database_url`."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return False
    path = Path(url.database)
    return (cwd / path).resolve() == (recon_home / "ledger.db").resolve()


def positive_number(name: str, value: str | None) -> float | None:
    """``value`` as a positive finite number (None when unset); ConfigError naming ``name``."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return number


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read the settings from ``environ`` (default ``os.environ``) over ``cwd/.env``."""
    cwd = cwd or Path.cwd()
    dotenv_path = cwd / ".env"
    merged: dict[str, str] = {}
    if dotenv_path.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = merged.get(name)
        return value if value not in (None, "") else None

    recon_home = Path(get("RECON_HOME") or "./.recon")
    if not recon_home.is_absolute():
        recon_home = (cwd / recon_home).resolve()
    database_url = normalize_database_url(
        get("DATABASE_URL") or f"sqlite:///{recon_home / 'ledger.db'}")
    check_database_url(database_url)
    dagster_home = Path(get("DAGSTER_HOME") or recon_home / "dagster")

    key_file = get("COINBASE_KEY_FILE")
    port = get("RECON_SMTP_PORT") or "587"
    try:
        smtp_port = int(port)
    except ValueError:
        raise ConfigError(f"RECON_SMTP_PORT must be a port number, got {port!r}") from None
    alert_to = tuple(a.strip() for a in (get("RECON_ALERT_TO") or "").split(",") if a.strip())
    alerts = AlertSettings(
        slack_webhook_url=get("RECON_SLACK_WEBHOOK_URL"),
        smtp_host=get("RECON_SMTP_HOST"),
        smtp_port=smtp_port,
        smtp_user=get("RECON_SMTP_USER"),
        smtp_password=get("RECON_SMTP_PASSWORD"),
        alert_from=get("RECON_ALERT_FROM"),
        alert_to=alert_to,
    )
    exchange = get("RECON_EXCHANGE")
    if exchange not in (None, *EXCHANGE_CHOICES):
        raise ConfigError(f"RECON_EXCHANGE must be one of {', '.join(EXCHANGE_CHOICES)} "
                          f"(or unset), got {exchange!r}")
    settings = Settings(
        recon_home=recon_home,
        database_url=database_url,
        exchange=exchange,
        embedded_ledger=is_embedded_ledger(database_url, recon_home, cwd),
        requests_per_second=positive_number("RECON_REQUESTS_PER_SECOND",
                                            get("RECON_REQUESTS_PER_SECOND")),
        dagster_home=dagster_home,
        coinbase_api_key=get("COINBASE_API_KEY"),
        coinbase_api_secret=get("COINBASE_API_SECRET"),
        coinbase_key_file=Path(key_file) if key_file else None,
        exchange_url=get("RECON_EXCHANGE_URL"),
        alerts=alerts,
        schedule_timezone=get("RECON_SCHEDULE_TIMEZONE") or "UTC",
        weekly_cron=get("RECON_WEEKLY_CRON") or "15 9 * * 0",
        daily_pnl_cron=get("RECON_DAILY_PNL_CRON") or "5 9 * * *",
        daily_validation_cron=get("RECON_DAILY_VALIDATION_CRON") or "10 9 * * *",
        executor=get("RECON_EXECUTOR") or "in_process",
        celery_broker=get("RECON_CELERY_BROKER"),
        celery_backend=get("RECON_CELERY_BACKEND"),
    )
    if settings.coinbase_api_key and not settings.coinbase_api_secret:
        raise ConfigError("COINBASE_API_KEY is set but COINBASE_API_SECRET is not")
    if exchange == "simulator" and (settings.exchange_url or settings.coinbase_api_key
                                    or settings.coinbase_key_file):
        raise ConfigError("RECON_EXCHANGE=simulator asks for the embedded demo simulator, but "
                          "an exchange is configured too (COINBASE_* or RECON_EXCHANGE_URL): "
                          "unset one of them")
    if settings.exchange_url:  # what is wrong with the URL itself is said first
        check_exchange_url(settings.exchange_url)
    if settings.exchange_url and not settings.coinbase_key_file:
        raise ConfigError("RECON_EXCHANGE_URL needs COINBASE_KEY_FILE (the key that server trusts)")
    return settings
