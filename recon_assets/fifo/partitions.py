"""``fifo_versions``: one Dagster partition per FIFO version.

The partition key is the version number, so the UI lists every version with its own
materialization, PnL and check results, and a run that validates or reports an old version
touches only that version's partition. Keys are added by whoever decides a new version is due
(the ledger sensor, the CLI, or a user in the launchpad), never by the assets themselves.
"""

import warnings

import dagster as dg

# Checks partitioned by version are a Dagster preview feature, chosen on purpose; every module
# defining them imports this one first, so its notice never clutters a command's output.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

FIFO_VERSIONS = dg.DynamicPartitionsDefinition(name="fifo_versions")


def version_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext
               | dg.OpExecutionContext) -> int:
    """The FIFO version a run works on: its partition key."""
    return int(context.partition_key)
