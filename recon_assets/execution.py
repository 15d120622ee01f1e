"""``recon_executor``: where a run's steps execute, chosen by configuration, not by code.

One executor with one choice in its config, as Dagster's own default executor offers
``in_process`` / ``multiprocess``, plus ``celery`` (dagster-celery, the ``celery`` extra):

.. code-block:: yaml

    execution:
      config:
        celery:
          config_source: {task_default_queue: recon}

The choice a run gets without such run config is ``RECON_EXECUTOR`` (default ``in_process``:
small ledgers gain nothing from a process per step), so schedules and sensors follow the
deployment. The Celery broker and result backend come from the run config, else from
``RECON_CELERY_BROKER`` / ``RECON_CELERY_BACKEND``, read when a run starts (so a broker
password never becomes part of the definitions the UI shows), else dagster-celery's defaults
(``pyamqp://guest@localhost//``, ``rpc://``).
"""

from __future__ import annotations

from typing import Any, Mapping

import dagster as dg

from recon_assets.errors import ConfigError
from recon_assets.settings import load_settings

EXECUTOR_NAMES = ("in_process", "multiprocess", "celery")


def _choices() -> dict[str, dg.ExecutorDefinition]:
    choices = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}
    try:
        from dagster_celery import celery_executor
    except ImportError:  # the celery extra is not installed
        return choices
    return {**choices, "celery": celery_executor}


def _celery_schema(executor_def: dg.ExecutorDefinition) -> dg.Field:
    """dagster-celery's config, with ``backend`` left unset by default so that an unset
    backend can fall back to the environment."""
    from dagster_celery.executor import CELERY_CONFIG

    fields = dict(CELERY_CONFIG)
    fields["backend"] = dg.Field(dg.Noneable(dg.StringSource), is_required=False,
                                 description="The Celery result backend. Default: "
                                             "RECON_CELERY_BACKEND, else 'rpc://'.")
    return dg.Field(fields, is_required=False, description=executor_def.description)


def _celery_config(config: Mapping[str, Any]) -> dict[str, Any]:
    settings = load_settings()
    return {**config, "broker": config.get("broker") or settings.celery_broker,
            "backend": config.get("backend") or settings.celery_backend or "rpc://"}


def build_executor(default: str = "in_process") -> dg.ExecutorDefinition:
    """The executor of every job; ``default`` is the choice a run gets without run config."""
    choices = _choices()
    if default not in EXECUTOR_NAMES:
        raise ConfigError(f"RECON_EXECUTOR must be one of {', '.join(EXECUTOR_NAMES)}, "
                          f"got {default!r}")
    if default not in choices:
        raise ConfigError("RECON_EXECUTOR=celery needs dagster-celery: "
                          "pip install -e '.[celery]'")
    schema = {name: (_celery_schema(d) if name == "celery" else d.config_schema.as_field())
              for name, d in choices.items()}

    def requirements(config: Mapping[str, Any]) -> list:
        ((name, sub),) = config.items()
        return list(choices[name].get_requirements(sub))

    @dg.executor(name="recon_executor",
                 config_schema=dg.Field(dg.Selector(schema), default_value={default: {}}),
                 requirements=requirements)
    def recon_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        """Runs the steps in-process, in a process each, or on Celery workers, as
        configured (see recon_assets.execution)."""
        ((name, sub),) = init_context.executor_config.items()
        chosen = choices[name]
        config = _celery_config(sub) if name == "celery" else sub
        return chosen.executor_creation_fn(dg.InitExecutorContext(
            job=init_context.job, executor_def=chosen, executor_config=config,
            instance=init_context.instance))

    return recon_executor
