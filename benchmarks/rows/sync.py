"""Row ``sync``: a full ``sync_fills`` of 200,000 fills from the simulator, then a re-sync.

The simulator (its own process) enforces Coinbase's 30 requests/s per key and answers 429
beyond it; the client goes through the real SDK over HTTP, 1,000 fills a page, paced at the
key's limit (``CLIENT_RPS``). Measured: the full sync into an empty PostgreSQL archive
(paging, validation, archive: a pipeline in which pages k-1 and k are archived on two
connections while page k+1 is validated and page k+2 fetched), the request rate of its
paging phase (requests after the first / time from the first committed page to the last),
and an incremental re-sync with nothing new.
Baseline: the bare SDK cursor loop under the same pacing, which only pages (no validation,
no archive): its time is the paging time, and the target is the sync's wall time at most
``MAX_WALL_OVER_PAGING`` times it (issue 17). Also reported: the rate the shipped default
pacing (``DEFAULT_REQUESTS_PER_SECOND``, 15/s: half the key's limit, for the bot) reaches,
paging only.
``--quick``: 2,000 fills.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.checks import check
from benchmarks.exchange import RATE_LIMIT, sdk_paging_loop, simulator
from benchmarks.history import bot_history
from benchmarks.measure import measure
from benchmarks.rows import result
from benchmarks.scratch import scratch_store
from recon_assets.errors import ExchangeError
from recon_assets.exchange.client import DEFAULT_REQUESTS_PER_SECOND
from recon_assets.exchange.sync import sync_fills

#: The client's pacing: the key's limit. The shipped default stays below it
#: (:data:`recon_assets.exchange.client.DEFAULT_REQUESTS_PER_SECOND`); the row reports the
#: rate that default reaches too.
CLIENT_RPS = float(RATE_LIMIT)
#: Issue 17: the whole sync takes at most this many times its paging alone.
MAX_WALL_OVER_PAGING = 1.2


def _rate(requests: int, pages: list[float]) -> float | None:
    """Requests after the first, over the time from the first answer to the last."""
    span = pages[-1] - pages[0] if len(pages) > 1 else 0.0
    return (requests - 1) / span if span > 0 else None


def run(quick: bool) -> dict[str, Any]:
    n_fills = 2_000 if quick else 200_000
    history = bot_history(n_fills * 4 // 5, seed=1)  # every 4th order has two fills
    products = len(history.symbols)
    with tempfile.TemporaryDirectory() as tmp, simulator(history.fills, Path(tmp)) as sim, \
            scratch_store() as store:
        pages: list[float] = []
        failure = None
        with sim.client(CLIENT_RPS) as client, measure() as project:
            cpu_started = time.process_time()
            try:
                full = sync_fills(client, store,
                                  progress=lambda _n: pages.append(time.perf_counter()))
            except ExchangeError as exc:  # a request that failed after its retries
                failure, full = str(exc), None
            cpu_seconds = time.process_time() - cpu_started
        stats = client.stats
        with sim.client(CLIENT_RPS) as client, measure() as again:
            resync = sync_fills(client, store)
        time.sleep(1.1)  # a fresh rate-limit window for each of the next two
        with measure() as base:
            loop = sdk_paging_loop(sim, CLIENT_RPS)
        time.sleep(1.1)
        default_pages: list[float] = []
        with sim.client(DEFAULT_REQUESTS_PER_SECOND) as client:
            for _page in client.iter_fills():
                default_pages.append(time.perf_counter())
            default_rate = _rate(client.stats.requests, default_pages)
    requests = stats.requests
    rate = _rate(requests, pages)
    wall_over_paging = round(project.seconds / base.seconds, 3) if base.seconds else None
    return result(
        "sync", f"sync_fills, {n_fills:,} fills, server limit {RATE_LIMIT}/s",
        size={"fills": n_fills, "products": products, "page_size": 1000},
        project=project, baseline="bare SDK get_fills cursor loop, same pacing, no archive",
        baseline_phase=base,
        checks=[check("wall / paging", wall_over_paging, "<=", MAX_WALL_OVER_PAGING, "x"),
                check("request rate", rate and round(rate / RATE_LIMIT * 100, 1), ">=", 90,
                      "% of limit"),
                check("requests failed after retries", 0 if failure is None else 1, "==", 0),
                check("fills archived", full and full.new_fills, "==", n_fills),
                check("re-sync requests", resync.requests, "<=", products)],
        details={
            "client_requests_per_second": CLIENT_RPS, "server_rate_limit": RATE_LIMIT,
            "requests": requests, "retries": stats.retries,
            "responses_by_status": stats.by_status, "failure": failure,
            "requests_per_second": rate and round(rate, 2),
            "wall_seconds": round(project.seconds, 3),
            "paging_seconds": round(base.seconds, 3), "wall_over_paging": wall_over_paging,
            "paging_at_the_limit_seconds": round(requests / RATE_LIMIT, 3),
            "sync_cpu_seconds": round(cpu_seconds, 3),
            "resync_seconds": round(again.seconds, 3), "resync_requests": resync.requests,
            "resync_new_fills": resync.new_fills,
            "baseline_requests": loop["requests"],
            "baseline_rate_limited": loop["rate_limited"], "baseline_fills": loop["fills"],
            "default_pacing_requests_per_second": DEFAULT_REQUESTS_PER_SECOND,
            "default_pacing_rate": default_rate and round(default_rate, 2),
            "default_pacing_percent_of_limit": default_rate and round(
                default_rate / RATE_LIMIT * 100, 1),
        })
