"""The exchange side of the rows: the simulator in its own process, and clients for it.

The simulator runs as ``recon-assets simulator`` in a separate process (as a remote exchange
would be), so its CPU time does not compete with the client's for this process's GIL, and
the row's peak memory is the client's alone. Every client signs with the simulator's key.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from coinbase.rest import RESTClient

from recon_assets.exchange.client import ExchangeClient, parse_base_url
from recon_assets.exchange.simulator import write_fills_jsonl
from recon_assets.exchange.transport import Pacer, mount_plain_http, reset_delay

#: The private REST limit Coinbase gives per key, enforced by the simulator (429 beyond).
RATE_LIMIT = 30
_CLI = "import sys; from recon_assets.cli import main; sys.exit(main())"


@dataclass(frozen=True)
class RunningSimulator:
    url: str
    key_file: Path
    rate_limit: int | None

    def client(self, requests_per_second: float) -> ExchangeClient:
        return ExchangeClient(self.url, key_file=self.key_file,
                              requests_per_second=requests_per_second)


@contextlib.contextmanager
def simulator(fills: list[dict], workdir: Path, rate_limit: int | None = RATE_LIMIT
              ) -> Iterator[RunningSimulator]:
    """``recon-assets simulator`` serving ``fills`` on a free port until the block ends."""
    fills_file, key_file, log_file = (workdir / "fills.jsonl", workdir / "key.json",
                                      workdir / "simulator.log")
    write_fills_jsonl(fills_file, fills)
    args = [sys.executable, "-c", _CLI, "simulator", "--port", "0", "--fills", str(fills_file),
            "--key-file", str(key_file)]
    if rate_limit is not None:
        args += ["--rate-limit", str(rate_limit)]
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""  # "... at http://..." or EOF
        if " at http" not in line:
            raise RuntimeError(f"simulator did not start: {line!r} "
                               f"{log_file.read_text()[-2000:]}")
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        yield RunningSimulator(url, key_file, rate_limit)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sdk_paging_loop(sim: RunningSimulator, requests_per_second: float, page_size: int = 1000,
                    **filters: object) -> dict:
    """The baseline: the bare SDK's ``get_fills`` cursor loop under the same pacing, nothing
    else (no validation, no archive); a 429 waits for the announced ``x-ratelimit-reset`` (a
    fraction of a second) and asks again."""
    host_port, _ = parse_base_url(sim.url)
    rest = RESTClient(api_key=None, api_secret=None, key_file=str(sim.key_file),
                      base_url=host_port, timeout=30, rate_limit_headers=True)
    mount_plain_http(rest.session, host_port)
    pacer = Pacer(requests_per_second)
    cursor, fills, requests, limited = None, 0, 0, 0
    while True:
        pacer.wait()
        requests += 1
        try:
            body = rest.get_fills(limit=page_size, cursor=cursor, **filters).to_dict()
        except Exception as exc:  # requests.HTTPError; only 429 is expected here
            if getattr(getattr(exc, "response", None), "status_code", None) != 429:
                raise
            limited += 1
            reset = reset_delay(exc.response.headers.get("x-ratelimit-reset"))
            time.sleep(1.0 if reset is None else reset)
            continue
        fills += len(body.get("fills") or [])
        cursor = body.get("cursor") or None
        if cursor is None:
            break
    rest.session.close()
    return {"fills": fills, "requests": requests, "rate_limited": limited}
