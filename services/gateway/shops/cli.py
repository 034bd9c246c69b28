"""``karya shops``: connect a Shopee or TikTok Shop shop (authorisation code → stored tokens) and list them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from infra.cli_root import CliRoot
from infra.db.roles import GATEWAY_URL_ENV
from services.gateway.app import SCHEMA
from services.gateway.clients.base import MarketplaceApiError
from services.gateway.clients.settings import ClientSettings, ClientSettingsError
from services.gateway.settings import GatewayConfigError
from services.gateway.shops.connect import ShopTools, connect_shop, shop_tools

app = typer.Typer(help="Shops authorised for the seller APIs (Shopee, TikTok Shop): tokens per shop.")

_CHANNELS = ("shopee", "tiktok_shop")


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(2)


@asynccontextmanager
async def _shop_tools(ctx: typer.Context) -> AsyncIterator[ShopTools]:
    """The token APIs and store on this command's gateway-role engine (its root's)."""
    root = CliRoot.of(ctx)
    if not root.has("gateway"):
        raise GatewayConfigError(f"{GATEWAY_URL_ENV} is not set: shop tokens live in the gateway's schema")
    settings = root.settings(ClientSettings, ClientSettings.from_env)  # read once per invocation, by the root
    async with root.database("gateway", SCHEMA, name="karya-shops") as db, shop_tools(db, settings) as tools:
        yield tools


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@app.command("connect")
def connect(
    ctx: typer.Context,
    channel: str = typer.Argument(..., help="shopee | tiktok_shop"),
    shop_id: str = typer.Option(None, "--shop-id", help="The shop (Shopee: the redirect's shop_id)."),
    code: str = typer.Option(None, "--code", help="The code of the redirect; asked for when not given."),
) -> None:
    """Authorise a shop: open the printed link as the seller, then give the redirect's code."""

    async def run() -> str:
        async with _shop_tools(ctx) as tools:
            api = tools.api(channel)
            given = code
            if not given:
                typer.echo(
                    f"Open this link as the seller and approve Karya:\n  {api.authorize_url(secrets.token_hex(8))}"
                )
                given = typer.prompt("code from the redirect URL", hide_input=True)
            grant = await connect_shop(tools, channel, given, shop_id)
            name = f" ({grant.shop_name})" if grant.shop_name else ""
            return (
                f"connected {channel} shop {grant.shop_id}{name}: access token valid until "
                f"{_when(grant.access_expires_at)}, refreshed automatically by the gateway"
            )

    if channel not in _CHANNELS:
        raise _fail(f"{channel!r} does not authorise per shop: choose one of {', '.join(_CHANNELS)}")
    try:
        typer.echo(asyncio.run(run()))
    except (GatewayConfigError, ClientSettingsError, MarketplaceApiError) as exc:
        raise _fail(str(exc)) from None


@app.command("list")
def list_shops(ctx: typer.Context) -> None:
    """Connected shops: token expiry, last refresh and the last refresh error (never a token)."""

    async def run() -> Table:
        async with _shop_tools(ctx) as tools:
            shops = await tools.store.shops()
        table = Table(title="Connected shops")
        for column in ("channel", "shop", "name", "access until", "refresh until", "refreshed", "failures", "error"):
            table.add_column(column)
        for shop in shops:
            table.add_row(
                shop.channel,
                shop.shop_id,
                shop.shop_name or "",
                _when(shop.access_expires_at),
                _when(shop.refresh_expires_at),
                _when(shop.refreshed_at),
                str(shop.refresh_failures),
                shop.refresh_error or "",
            )
        return table

    try:
        Console().print(asyncio.run(run()))
    except (GatewayConfigError, ClientSettingsError) as exc:
        raise _fail(str(exc)) from None
