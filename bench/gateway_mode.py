"""`make bench BENCH_ARGS="--via-gateway"`: the load as signed marketplace webhooks through the HTTP gateway.

The in-process marketplace simulator plays a day of N orders (webhooks signed per channel, with duplicates, late
and out-of-order deliveries, one tampered and one wrongly signed copy) against the gateway, which verifies,
deduplicates and normalises them into the same pipeline as the direct mode. Measured: webhooks/s as sent, and
events/s from the first webhook to the last posting committed. The simulator paces itself like a marketplace
(see ``sim/``), so this mode measures the path, not the pipeline's ceiling.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import text

from bench.harness import Bench, committed_at, cpu_seconds, stack_pids
from infra.db.engine import make_engine
from infra.environment import state_dir
from karya.demo_report import database_counts, wait_pipeline_drained
from karya.demo_sim import apply_env, demo_secrets, marketplace_env, run_simulated_day
from karya.processes import free_port, wait_until_ready
from services.orders.catalogue import load_catalogue
from sim.pipeline_env import CATALOGUE

# The gateway's backstop poller re-checks quiet orders after KARYA_BACKSTOP_MIN_AGE_S (15 s in marketplace_env):
# the pipeline counts as drained only once it stayed still longer than that.
_QUIET_S = 25.0


async def via_gateway(orders: int, seed: int, replicas: dict[str, int], say: Any) -> dict[str, Any]:
    """One marketplace day of ``orders`` orders through the gateway; the run's figures."""
    bench = Bench(database="karya_bench", prefix=f"bench{int(time.time())}gw{orders}.")
    say(f"{orders:,} orders via the gateway: preparing database and services")
    await bench.setup(orders)
    catalogue = load_catalogue(CATALOGUE)
    gateway_port, sim_port = free_port(), free_port()
    env = demo_secrets() | marketplace_env(catalogue, sim_port, gateway_port)
    apply_env(env)  # the in-process simulator signs with the same secrets the gateway verifies
    bench.start(state_dir() / "bench" / bench.prefix.rstrip("."), replicas, gateway=(gateway_port, env))
    sent_at: list[float] = []
    cpu_sent: list[dict[str, float]] = []
    try:
        await wait_until_ready(bench.procs)

        async def until_drained() -> None:
            sent_at.append(time.time())
            cpu_sent.append(cpu_seconds(pids))
            say("webhooks sent; waiting for the drain")
            if not await wait_pipeline_drained(
                bench.service_url, bench.prefix, bench.procs, timeout_s=max(300.0, orders / 5), stable_s=_QUIET_S
            ):
                raise TimeoutError("the pipeline did not drain")

        pids = {name: bench.pids(name) for name in ("gateway", "orders", "ledger")}
        pids |= stack_pids() | {"simulator": [os.getpid()]}
        cpu0 = cpu_seconds(pids)
        t0 = time.time()
        sim = await run_simulated_day(
            catalogue, sim_port, orders, seed, lambda done, total: None, until_drained, bench.service_url
        )
        last_commit = f"SELECT max({await committed_at(bench)}) FROM ledger.journal_entries"
        engine = make_engine(bench.service_url, pool_size=1)
        try:
            async with engine.connect() as c:
                counts = await database_counts(c)
                end = (await c.execute(text(last_commit))).scalar_one()
        finally:
            await engine.dispose()
    finally:
        await bench.close()
    elapsed = (end.timestamp() if end is not None else sent_at[0]) - t0
    sending = sent_at[0] - t0
    return {
        "orders": orders,
        "mode": "via-gateway",
        "webhooks_sent": sim["sim_webhooks_sent"],
        "webhooks_rejected": sim["sim_webhooks_rejected"],
        "unexpected_rejections": sim["sim_unexpected_rejections"],
        "webhooks_per_s": round(sim["sim_webhooks_sent"] / sending, 1) if sending > 0 else None,
        "events": counts["events_processed"],
        "elapsed_s": round(elapsed, 2),
        "events_per_s": round(counts["events_processed"] / elapsed, 1) if elapsed > 0 else None,
        "journal_entries": counts["journal_entries"],
        "unbalanced_entries": counts["unbalanced_entries"],
        "duplicate_postings": counts["duplicate_postings"],
        # While the webhooks were sent; the simulator is this process, which also serves the seller APIs the
        # gateway calls.
        "cpu_s_sending": {k: round(cpu_sent[0].get(k, 0) - cpu0.get(k, 0), 1) for k in cpu0},
    }
