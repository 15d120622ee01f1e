"""``backfill_review_job``: the review workflow from the Dagster UI.

An operator who never opens a terminal approves, rejects or applies backfill requests from the
launchpad, with who decides; the same ledger functions as ``recon-assets backfill`` do the
work, in the same locked transaction, with the same refusals (an unknown id, a request in the
wrong state, a request whose order no longer validates).
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from recon_assets.ledger import backfill
from recon_assets.ledger.resources import LedgerResource


class ReviewConfig(dg.Config):
    """Which requests, what to do with them, and who decides."""

    request_ids: list[int] = Field(description=(
        "Backfill request ids (see `recon-assets backfill list` or the backfill_requests "
        "table); for apply, an empty list applies every approved request."))
    action: Literal["approve", "reject", "apply"] = Field(description=(
        "approve or reject pending requests; apply approved ones (inserts their orders into "
        "trade_records in one transaction; existing rows are never touched)."))
    by: str = Field(min_length=1, description="Who decides, recorded with the requests.")


@dg.op(description="Approve, reject or apply backfill requests (SPEC section 4).")
def review_backfill_requests(context: dg.OpExecutionContext, config: ReviewConfig,
                             ledger: LedgerResource) -> dg.Output[None]:
    store = ledger.get_store()
    with store.locked("backfill") as conn:
        if config.action == "apply":
            result = backfill.apply(conn, config.request_ids or None, config.by)
            done, inserted = result.applied_ids, result.inserted_order_ids
        else:
            decide = backfill.approve if config.action == "approve" else backfill.reject
            done, inserted = decide(conn, config.request_ids, config.by), []
    context.log.info(f"{config.action}: requests {', '.join(map(str, done)) or 'none'} by "
                     f"{config.by}" + (f"; inserted {len(inserted)} orders into trade_records "
                                       "(the ledger sensor starts a new FIFO version)"
                                       if inserted else ""))
    return dg.Output(None, metadata={
        "action": dg.MetadataValue.text(config.action),
        "requests": dg.MetadataValue.int(len(done)),
        "request_ids": dg.MetadataValue.json(done),
        "inserted_orders": dg.MetadataValue.json(inserted),
        "by": dg.MetadataValue.text(config.by)})


@dg.job(tags={"recon-assets/exclusive": "ledger"},
        description="Approve, reject or apply backfill requests by id, with who decides: the "
                    "review workflow without a terminal.")
def backfill_review_job() -> None:
    review_backfill_requests()
