"""Asset ``fifo_version_diff``: what changed between two FIFO versions, and why.

After a backfill and a recompute, the new version's PnL differs from the old one's; this asset
names the sells that moved, the orders that moved them, and the PnL delta per symbol, so the
change can be reviewed before anyone relies on the new numbers. Its check
``check_fifo_version_diff_explained`` warns when numbers moved although no order appeared in or
left the allocations (an edited ledger row, or a change in the rules), or when sells lost
their cover; the alert sensor reports it like every failed check.
"""

from dataclasses import replace
from typing import Optional

import dagster as dg

from recon_assets.alerts import Alert, AlertSender
from recon_assets.errors import VersionError
from recon_assets.fifo.run_version import version_of_run
from recon_assets.fifo.version_diff import VersionDiff, diff_versions, to_json, to_markdown
from recon_assets.ledger import versions
from recon_assets.ledger.resources import LedgerResource
from recon_assets.money import decimal_str
from recon_assets.settings import load_settings

EXPLAINED_CHECK = "check_fifo_version_diff_explained"
#: List entries kept in the ``diff`` metadata (the counts are always complete).
METADATA_LIMIT = 1000


class VersionDiffConfig(dg.Config):
    """Versions to compare: ``new`` defaults to the version this run wrote (else the latest),
    ``old`` to the one before ``new``."""

    old: Optional[int] = None
    new: Optional[int] = None


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


def announce_new_version(diff: VersionDiff, run_id: str) -> list[str]:
    """Tell the alert channels about a new version and its PnL delta (the first question a
    trader asks after a backfill); returns the channels that got it."""
    settings = load_settings()
    sender = AlertSender(settings.alerts, redact=settings.secrets())
    if not sender.enabled_channels:
        return []
    return sender.send(Alert(
        title=f"FIFO version {diff.new_version}: realized PnL {decimal_str(diff.pnl_before)} -> "
              f"{decimal_str(diff.pnl_after)} USD (delta {decimal_str(diff.pnl_delta)})",
        severity="INFO", asset_key="fifo_version_diff",
        allocation_version=str(diff.new_version), run_id=run_id,
        description=f"Compared with version {diff.old_version}: {len(diff.changed_sells)} sells "
                    f"changed, {len(diff.newly_matched)} newly matched, "
                    f"{len(diff.newly_unmatched)} newly unmatched.",
        details=tuple(f"{row.symbol}: {decimal_str(row.before)} -> {decimal_str(row.after)} "
                      f"USD (delta {decimal_str(row.delta)})" for row in diff.symbols)[:10]))


@dg.asset(deps=["fifo_allocations"], group_name="fifo", kinds={"sql"},
          check_specs=[dg.AssetCheckSpec(EXPLAINED_CHECK, asset="fifo_version_diff",
                                         description="The change between the versions is "
                                                     "explained by orders that appeared or "
                                                     "left, and no sell lost its cover.")],
          description="What changed between two FIFO versions (default: the latest and the one "
                      "before it): PnL per symbol, changed sells, and the orders behind them.")
def fifo_version_diff(context: dg.AssetExecutionContext, config: VersionDiffConfig,
                      ledger: LedgerResource) -> dg.MaterializeResult:
    store = ledger.get_store()
    with store.connect() as conn:
        logged = [info.version for info in versions.list_versions(conn)]
        old, new = pick_versions(logged, config.old, version_of_run(context, config.new))
        new_rows = versions.read_allocations(conn, new)
        old_rows = versions.read_allocations(conn, old) if old is not None else new_rows
    diff = diff_versions(old_rows, new_rows)
    diff = replace(diff, old_version=old, new_version=new)
    context.log.info(f"version {old} -> {new}: PnL delta {decimal_str(diff.pnl_delta)}, "
                     f"{len(diff.changed_sells)} sells changed" if old is not None
                     else f"version {new} has no predecessor: nothing to compare")
    reasons = unexplained(diff)
    metadata = {
        "new_version": dg.MetadataValue.int(new),
        "has_predecessor": dg.MetadataValue.bool(old is not None),
        "pnl_before_usd": dg.MetadataValue.text(decimal_str(diff.pnl_before)),
        "pnl_after_usd": dg.MetadataValue.text(decimal_str(diff.pnl_after)),
        "pnl_delta_usd": dg.MetadataValue.text(decimal_str(diff.pnl_delta)),
        **{name: dg.MetadataValue.int(count)
           for name, count in to_json(diff, limit=0)["counts"].items()},
        "summary": dg.MetadataValue.md(to_markdown(diff)),
        "diff": dg.MetadataValue.json(to_json(diff, limit=METADATA_LIMIT)),
    }
    if old is not None:
        metadata["old_version"] = dg.MetadataValue.int(old)
        if config.old is None and config.new is None:
            sent = announce_new_version(diff, context.run.run_id)
            metadata["announced_to"] = dg.MetadataValue.text(", ".join(sent) or "no channel")
    return dg.MaterializeResult(metadata=metadata, check_results=[dg.AssetCheckResult(
        check_name=EXPLAINED_CHECK, passed=not reasons, severity=dg.AssetCheckSeverity.WARN,
        description=(f"FIFO version {new} differs from version {old} in a way that needs "
                     "review: " + "; ".join(reasons) if reasons else None),
        metadata={"allocation_version": dg.MetadataValue.int(new),  # the alert shows it
                  "old_version": dg.MetadataValue.text(str(old)),
                  "reasons": dg.MetadataValue.json(reasons)})])
