"""The demo's marketplace side: generated demo secrets shared by the simulator and the gateway, and a day of
signed webhook traffic from the in-process simulator."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from services.orders.catalogue import Catalogue

if TYPE_CHECKING:
    from sim.server import Simulator
    from sim.traffic import TrafficRunner


def demo_secrets() -> dict[str, str]:
    """Fresh credentials for one demo run (the gateway reads them from its environment, like production)."""
    return {
        "KARYA_TOKOPEDIA_WEBHOOK_SECRET": secrets.token_hex(16),
        "KARYA_TOKOPEDIA_API_TOKEN": secrets.token_hex(16),
        "KARYA_TIKTOK_APP_KEY": "demo" + secrets.token_hex(4),
        "KARYA_TIKTOK_APP_SECRET": secrets.token_hex(16),
        "KARYA_SHOPEE_PARTNER_ID": str(2_000_000 + secrets.randbelow(1_000_000)),
        "KARYA_SHOPEE_PARTNER_KEY": secrets.token_hex(16),
        "KARYA_BLIBLI_API_CLIENT_ID": "mta-api-demo-" + secrets.token_hex(4),
        "KARYA_BLIBLI_API_CLIENT_KEY": secrets.token_hex(16),
        "KARYA_BLIBLI_API_KEY": secrets.token_hex(8),
        "KARYA_BLIBLI_API_SECRET": secrets.token_hex(16),
        "KARYA_TOKEN_KEY": secrets.token_hex(32),
    }


def marketplace_env(catalogue: Catalogue, sim_port: int, gateway_port: int) -> dict[str, str]:
    """Where the gateway finds the simulated marketplaces and how often it polls them in the demo."""
    sim = f"http://127.0.0.1:{sim_port}"
    stores = sorted({x.shop_id for x in catalogue.listings if x.channel.value == "blibli"})
    return {
        "KARYA_TOKOPEDIA_API_URL": f"{sim}/tokopedia",
        "KARYA_TIKTOK_API_URL": f"{sim}/tiktok_shop",
        "KARYA_TIKTOK_AUTH_URL": f"{sim}/tiktok_auth",
        "KARYA_SHOPEE_API_URL": f"{sim}/shopee",
        "KARYA_BLIBLI_API_URL": f"{sim}/blibli",
        "KARYA_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "KARYA_SIM_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "KARYA_BLIBLI_STORE_CODES": ",".join(stores),
        "KARYA_BLIBLI_POLL_INTERVAL_S": "2",
        "KARYA_BLIBLI_INITIAL_LOOKBACK_S": "3600",
        "KARYA_BACKSTOP_INTERVAL_S": "5",
        "KARYA_BACKSTOP_MIN_AGE_S": "15",
    }


async def run_simulated_day(
    catalogue: Catalogue,
    sim_port: int,
    orders: int,
    seed: int,
    on_progress: Callable[[int, int], None],
    until_drained: Callable[[], Any],
    database_url: str | None = None,
) -> dict[str, int]:
    """Serve the marketplace APIs, replay a day of webhooks, keep serving until the pipeline drained.

    ``on_progress(sent, planned)`` follows the webhooks: sent (each with its final answer) out of those planned.

    The shops are connected first, in the database of ``database_url`` (default ``DATABASE_URL``): the one the
    gateway under test uses."""
    async with simulated_marketplaces(catalogue, sim_port, database_url) as simulator:
        counts = await simulated_day(simulator, orders, seed, on_progress)
        await until_drained()
    return counts


@asynccontextmanager
async def simulated_marketplaces(
    catalogue: Catalogue, sim_port: int, database_url: str | None = None
) -> AsyncIterator[Simulator]:
    """The simulator's marketplace APIs on ``sim_port``, every Shopee/TikTok shop connected, until the block ends.

    Whatever polls them (the gateway) should stop inside the block: once it ends, each poll is a refused
    connection and a warning."""
    from sim.server import Simulator
    from sim.settings import SimSettings

    simulator = Simulator(catalogue, SimSettings.from_env())
    async with simulator.serve("127.0.0.1", sim_port):
        await connect_demo_shops(catalogue, sim_port, database_url)  # Shopee/TikTok calls need each shop's token
        yield simulator


async def simulated_day(
    simulator: Simulator, orders: int, seed: int, on_progress: Callable[[int, int], None]
) -> dict[str, int]:
    """A day of signed webhooks (one tampered and one wrongly signed copy among them); the simulator's counts."""
    from sim.plan import FaultRates

    summary = await simulator.run_day(
        orders=orders,
        seed=seed,
        faults=FaultRates(tampered=1, wrong_secret=1),
        on_progress=webhook_progress(simulator.runner, on_progress),
    )
    return {
        "sim_webhooks_sent": summary.webhooks_sent,
        "sim_webhooks_rejected": summary.webhooks_rejected,
        "sim_unexpected_rejections": summary.unexpected_rejections,
    }


def webhook_progress(runner: TrafficRunner, on_progress: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """The simulator reports plan steps (status changes and lost webhooks too); pass on webhooks sent / planned."""

    def report(_steps_done: int, _steps: int) -> None:
        on_progress(runner.progress.webhooks_sent, runner.progress.webhooks_planned)

    return report


async def connect_demo_shops(catalogue: Catalogue, sim_port: int, database_url: str | None = None) -> int:
    """Authorise every Shopee and TikTok Shop shop of the catalogue on the simulator and store its tokens."""
    import httpx

    from infra.db.engine import make_engine
    from infra.db.roles import GATEWAY, passwords_from_env, url_as
    from infra.db.unit_of_work import Database
    from services.gateway.app import SCHEMA as GATEWAY_SCHEMA
    from services.gateway.clients.settings import ClientSettings
    from services.gateway.shops.connect import connect_simulated_shops, shop_tools

    shops = [(x.channel.value, x.shop_id) for x in catalogue.listings if x.channel.value in ("shopee", "tiktok_shop")]
    # The gateway's role on the demo's database, as the demo's gateway process connects.
    url = database_url or os.environ["DATABASE_URL"]
    engine = make_engine(url_as(url, GATEWAY, passwords_from_env()), pool_size=1)
    try:
        sim = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}")
        async with sim, shop_tools(Database(engine, GATEWAY_SCHEMA), ClientSettings.from_env()) as tools:
            return await connect_simulated_shops(tools, sim, shops)
    finally:
        await engine.dispose()


def apply_env(values: dict[str, str]) -> None:
    """Put ``values`` into this process's environment (the in-process simulator reads it)."""
    os.environ.update(values)
