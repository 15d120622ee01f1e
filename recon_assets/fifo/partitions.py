"""The FIFO versions as Dagster partitions.

A FIFO version is an immutable snapshot of the allocations (SPEC section 3), which is what a
partition is: materializing partition ``"N"`` writes version N if it does not exist and
otherwise reports the stored version N. The key is ``str(version)``; partitions are added by
whoever decides a new version is needed (the ledger sensor, the CLI's ``run_job``).
"""

from __future__ import annotations

import dagster as dg

FIFO_VERSIONS = dg.DynamicPartitionsDefinition(name="fifo_versions")


def version_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext
               | dg.OpExecutionContext) -> int:
    """The FIFO version a partitioned step works on: its partition key as a number."""
    return version_key(context.partition_key)


def version_key(key: str) -> int:
    """A partition key as a version number; a key that is not a positive integer is refused
    (a typo in the launchpad would otherwise create a version nobody asked for)."""
    if not key.isdigit() or int(key) < 1:
        raise dg.Failure(f"fifo_versions partition {key!r} is not a positive version number")
    return int(key)
