"""Asset ``fifo_version_diff``: what changed between two FIFO versions, and why.

After a backfill and a recompute, the new version's PnL differs from the old one's; this asset
names the sells that moved, the orders that moved them, and the PnL delta per symbol, so the
change can be reviewed before anyone relies on the new numbers. Its check
``check_fifo_version_diff_explained`` warns when numbers moved although no order appeared in or
left the allocations (an edited ledger row, or a change in the rules), or when sells lost
their cover; the alert sensor reports it like every failed check.
"""

from dataclasses import replace

import dagster as dg

from recon_assets.errors import VersionError
from recon_assets.fifo.partitions import FIFO_VERSIONS, version_of
from recon_assets.fifo.service import diff_stored
from recon_assets.fifo.version_diff import VersionDiff, to_json, to_markdown
from recon_assets.ledger import versions
from recon_assets.ledger.resources import LedgerResource
from recon_assets.metadata import money
from recon_assets.money import decimal_str

EXPLAINED_CHECK = "check_fifo_version_diff_explained"
#: List entries kept in the ``diff`` metadata (the counts are always complete).
METADATA_LIMIT = 1000


def pick_versions(logged: list[int], old: int | None, new: int | None
                  ) -> tuple[int | None, int]:
    """The (old, new) pair to compare among the logged versions; ``old`` is ``None`` when
    ``new`` has no predecessor. A requested version that is not logged is an error."""
    for requested in (old, new):
        if requested is not None and requested not in logged:
            raise VersionError(f"FIFO version {requested} does not exist")
    if new is None:
        if not logged:
            raise VersionError("no FIFO version yet: run `recon-assets fifo` first")
        new = max(logged)
    if old is None:
        old = max((v for v in logged if v < new), default=None)
    return old, new


def unexplained(diff: VersionDiff) -> list[str]:
    """Why a diff needs a human: numbers moved with no order appearing in or leaving the
    allocations, or sells that were covered lost their cover. Empty when explained."""
    reasons = []
    moved = diff.pnl_delta != 0 or diff.changed_sells
    if moved and not (diff.causing_orders or diff.dropped_orders):
        reasons.append("allocations changed but no order appeared or left")
    lost = sorted(set(diff.newly_unmatched) - set(diff.added_sells))
    if lost:
        reasons.append(f"{len(lost)} sells matched before are unmatched now: "
                       + ", ".join(lost[:10]))
    return reasons


@dg.asset(deps=["fifo_allocations"], group_name="fifo", kinds={"sql"},
          partitions_def=FIFO_VERSIONS,
          check_specs=[dg.AssetCheckSpec(EXPLAINED_CHECK, asset="fifo_version_diff",
                                         partitions_def=FIFO_VERSIONS,
                                         description="The change between the versions is "
                                                     "explained by orders that appeared or "
                                                     "left, and no sell lost its cover.")],
          description="What changed from the version before (the newest existing version "
                      "below the partition's) to the partition's version: PnL per symbol, "
                      "changed sells, and the orders behind them.")
def fifo_version_diff(context: dg.AssetExecutionContext,
                      ledger: LedgerResource) -> dg.MaterializeResult:
    store = ledger.get_store()
    with store.connect() as conn:
        logged = [info.version for info in versions.list_versions(conn)]
        old, new = pick_versions(logged, None, version_of(context))
        # no predecessor: the version against itself (its PnL, nothing changed)
        diff = replace(diff_stored(conn, new if old is None else old, new), old_version=old)
    context.log.info(f"version {old} -> {new}: PnL delta {decimal_str(diff.pnl_delta)}, "
                     f"{len(diff.changed_sells)} sells changed" if old is not None
                     else f"version {new} has no predecessor: nothing to compare")
    reasons = unexplained(diff)
    metadata = {
        "new_version": dg.MetadataValue.int(new),
        "has_predecessor": dg.MetadataValue.bool(old is not None),
        **money("pnl_before_usd", diff.pnl_before),
        **money("pnl_after_usd", diff.pnl_after),
        **money("pnl_delta_usd", diff.pnl_delta),
        "symbols": dg.MetadataValue.json([
            {"symbol": row.symbol, "before": decimal_str(row.before),
             "after": decimal_str(row.after), "delta": decimal_str(row.delta)}
            for row in diff.symbols]),
        **{name: dg.MetadataValue.int(count)
           for name, count in to_json(diff, limit=0)["counts"].items()},
        "summary": dg.MetadataValue.md(to_markdown(diff)),
        "diff": dg.MetadataValue.json(to_json(diff, limit=METADATA_LIMIT)),
    }
    if old is not None:
        metadata["old_version"] = dg.MetadataValue.int(old)
    return dg.MaterializeResult(metadata=metadata, check_results=[dg.AssetCheckResult(
        check_name=EXPLAINED_CHECK, passed=not reasons, severity=dg.AssetCheckSeverity.WARN,
        description=(f"FIFO version {new} differs from version {old} in a way that needs "
                     "review: " + "; ".join(reasons) if reasons else None),
        metadata={"allocation_version": dg.MetadataValue.int(new),  # the alert shows it
                  "old_version": dg.MetadataValue.text(str(old)),
                  "reasons": dg.MetadataValue.json(reasons)})])
