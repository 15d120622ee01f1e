"""Typed errors that carry their context and the CLI exit code they map to (SPEC section 5).

Every error raised on purpose by recon-assets derives from :class:`ReconError`, so the CLI can
turn it into one clear line and the right exit code instead of a traceback.
"""

from __future__ import annotations

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3


class ReconError(Exception):
    """Base class: a failure recon-assets understands and can explain in one line."""

    exit_code: int = EXIT_FAILURE


class ConfigError(ReconError):
    """The configuration (environment, .env, command line) is unusable."""

    exit_code = EXIT_USAGE


class ExchangeError(ReconError):
    """The exchange (or the simulator) could not be reached or answered wrongly."""

    exit_code = EXIT_FAILURE


class LedgerError(ReconError):
    """The ledger database failed or refused a read or write."""

    exit_code = EXIT_FAILURE


class ConcurrencyError(LedgerError):
    """Another recompute or backfill holds the lock for the same ledger."""


class BadRowError(ReconError):
    """Input rows that cannot be used, each named by its id and field.

    ``problems`` is a list of ``(row_id, field, message)`` tuples so callers can report or
    store every problem, not just the first.
    """

    exit_code = EXIT_FAILURE

    def __init__(self, what: str, problems: list[tuple[str, str, str]]):
        self.what = what
        self.problems = problems
        shown = "; ".join(f"{rid}: {field}: {msg}" for rid, field, msg in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} bad {what}: {shown}{more}")


class VersionError(ReconError):
    """A FIFO version request conflicts with what is stored (exists, immutable, missing)."""

    exit_code = EXIT_USAGE


class RunFailedError(ReconError):
    """A Dagster run failed; carries the underlying error's message and exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code


def error_classes() -> dict[str, type[ReconError]]:
    """Every ReconError subclass by name, to recognize our errors in a failed run's record."""
    found: dict[str, type[ReconError]] = {}
    todo: list[type[ReconError]] = [ReconError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found
