"""The CLI's console logger: Dagster's colored console logger without failure tracebacks.

A failed run ends with one ``recon-assets: ...`` line on stderr (see ``runner._raise_failure``
and ``cli.main``), which names the step, the error and the run. Dagster's own console logger
would print the step and run failure events before it, each with a multi-line stack trace,
so those two events, and the "Dependencies for step ... failed. Not executing." errors that
follow from them, are left out of the console unless ``-v`` asks for every event. They are
still recorded in the run's event log, so the UI shows the full trace.
"""

from __future__ import annotations

import logging

import dagster as dg
from dagster._utils.log import create_console_logger

_FAILURES = {dg.DagsterEventType.STEP_FAILURE.value, dg.DagsterEventType.RUN_FAILURE.value}


class _NoFailureTraces(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "dagster_event", None)
        if getattr(event, "event_type_value", None) in _FAILURES:
            return False
        message = record.getMessage()
        return not ("Dependencies for step " in message and message.endswith("Not executing."))


@dg.logger(
    {"log_level": dg.Field(str, is_required=False, default_value="INFO"),
     "name": dg.Field(str, is_required=False, default_value="dagster")},
    description="Dagster's console logger; failure events only at DEBUG (the CLI reports "
                "a failure in one line).")
def cli_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    level = logging.getLevelName(config["log_level"].upper())
    logger = create_console_logger(name=config["name"], level=level)
    if not isinstance(level, int) or level > logging.DEBUG:
        logger.addFilter(_NoFailureTraces())
    return logger
