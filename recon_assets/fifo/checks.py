"""The validations of a FIFO version, as Dagster asset checks on ``fifo_allocations``.

One op evaluates every rule of :mod:`recon_assets.fifo.rules` over the version (reading only
the symbols not judged before, :mod:`recon_assets.fifo.validation`), and reports each as its
own check (``check_fifo_allocations_<rule>``). The checks are
partitioned like the asset: validating version N records results for partition N only. The
check only judges; ``fifo_version_status`` (downstream, so it runs only when every blocking
check passed) marks the version validated.
"""


import dagster as dg
from pydantic import Field

from recon_assets.fifo.partitions import FIFO_VERSIONS, version_of
from recon_assets.fifo.rules import RULE_DESCRIPTIONS, RULE_NAMES
from recon_assets.fifo.service import resolve_version
from recon_assets.fifo.validation import validate_version
from recon_assets.ledger.resources import LedgerResource
from recon_assets.metadata import jsonable, metadata_table

NON_BLOCKING = {"no_unmatched_sells"}


def check_name(rule: str) -> str:
    return f"check_fifo_allocations_{rule}"


SPECS = [dg.AssetCheckSpec(check_name(rule), asset="fifo_allocations",
                           blocking=rule not in NON_BLOCKING, partitions_def=FIFO_VERSIONS,
                           description=RULE_DESCRIPTIONS[rule])
         for rule in RULE_NAMES]


class ValidateConfig(dg.Config):
    """How to validate the partition's version."""

    strict: bool = Field(False, description="Make unmatched sells an ERROR (default: WARN).")


@dg.multi_asset_check(specs=SPECS, name="validate_fifo_allocations",
                      description="Validate a FIFO version (SPEC section 3 and the bot's "
                                  "validate_allocations rules).")
def validate_fifo_allocations(context: dg.AssetCheckExecutionContext, config: ValidateConfig,
                              ledger: LedgerResource):
    store = ledger.get_store()
    info = resolve_version(store, version_of(context))
    results, current = validate_version(store, info, strict=config.strict,
                                        log=context.log.info)
    ledger_changed = (info.ledger_fingerprint is not None
                      and str(current) != info.ledger_fingerprint)
    blocking_failed = [r.name for r in results if r.blocking and not r.passed]
    context.log.info(f"version {info.version}: "
                     + (f"failed {', '.join(blocking_failed)}" if blocking_failed
                        else "all blocking checks passed"))
    for r in results:
        columns = sorted({k for row in r.failing for k in row}) or ["detail"]
        yield dg.AssetCheckResult(
            check_name=check_name(r.name), passed=r.passed,
            severity=dg.AssetCheckSeverity(r.severity),
            description=r.description,
            metadata={
                "allocation_version": dg.MetadataValue.int(info.version),
                "failing_count": dg.MetadataValue.int(r.failing_count),
                "failing_rows": metadata_table(r.failing, columns),
                "version_status": dg.MetadataValue.text(info.status),
                "failing": dg.MetadataValue.json(jsonable(r.failing)),
                "ledger_changed_since_version": dg.MetadataValue.bool(ledger_changed),
                **{k: v for k, v in r.metadata.items()},
            })
