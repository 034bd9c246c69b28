"""`karya catalogue …`, `karya stock …` and `karya orders …` (connect as DATABASE_URL, the service role)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.orders.adapters.stock_repo import counter_drift, stock_by_workshop
from services.orders.app import SCHEMA
from services.orders.backorders import receive_catalogue
from services.orders.catalogue import CatalogueError, load_catalogue
from services.orders.inspection import Verdict, inspect_quarantine
from services.orders.outbound import OrdersTopics
from services.orders.queries import ledger_entries_of, order_detail

catalogue_app = typer.Typer(
    help="Product catalogue (lapas, workshops, products, listings, batches).", no_args_is_help=True
)
stock_app = typer.Typer(help="Workshop stock.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders.", no_args_is_help=True)
_console = Console()
T = TypeVar("T")


def _run(ctx: typer.Context, work: Callable[[UnitOfWork], Awaitable[T]], *, write: bool = False) -> T:
    """Run ``work`` in one transaction on the orders schema (as DATABASE_URL, the service role)."""
    return CliRoot.of(ctx).run("service", SCHEMA, work)


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@catalogue_app.command("load")
def catalogue_load(
    ctx: typer.Context, path: Path = typer.Argument(..., exists=True, help="A .yaml file or a directory of CSVs.")
) -> None:
    """Validate and load a catalogue (idempotent; new batches become stock receipts and fill the orders waiting for
    their SKUs, oldest first)."""
    topics = CliRoot.of(ctx).topics(OrdersTopics)
    try:
        catalogue = load_catalogue(path)
        report, filled = _run(ctx, lambda uow: receive_catalogue(uow, catalogue, str(path), topics), write=True)
    except CatalogueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"loaded {path}: {report.lapas} lapas, {report.workshops} workshops, {report.products} products, "
        f"{report.listings} listings; {len(report.new_batches)} new batches ({report.units_received} units received)"
        f"; {len(filled.orders)} waiting orders filled"
    )


@stock_app.command("show")
def stock_show(
    ctx: typer.Context, sku: str | None = typer.Argument(None), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Per SKU and workshop: on_hand, soft_reserved, allocated, quarantined, available."""
    rows = _run(ctx, lambda uow: stock_by_workshop(uow, sku))
    if as_json:
        _json(rows)
        return
    table = Table("sku", "workshop", "on_hand", "soft_reserved", "allocated", "quarantined", "available")
    for r in rows:
        table.add_row(
            r["sku"],
            r["workshop_id"],
            *(str(r[c]) for c in ("on_hand", "soft_reserved", "allocated", "quarantined", "available")),
        )
    _console.print(table)


@stock_app.command("reconcile")
def stock_reconcile(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Re-derive every counter from the movement log; exit 1 on any drift."""
    drift = _run(ctx, counter_drift)
    if as_json:
        _json({"drift": drift, "clean": not drift})
    elif drift:
        for d in drift:
            typer.secho(f"drift in batch {d['batch_id']}: {d}", fg="red", err=True)
    else:
        typer.echo("stock reconciled: every counter equals the sum of its movements")
    if drift:
        raise typer.Exit(1)


@stock_app.command("inspect")
def stock_inspect(
    ctx: typer.Context,
    quarantine_id: int = typer.Argument(..., help="Quarantine row id (see `karya orders show`)."),
    verdict: str = typer.Option(..., "--verdict", help="restock | write-off"),
    note: str = typer.Option("", "--note"),
) -> None:
    """Inspect returned units: restock them (sellable again) or write them off."""
    if verdict not in ("restock", "write-off"):
        typer.secho("--verdict must be restock or write-off", fg="red", err=True)
        raise typer.Exit(2)
    topics = CliRoot.of(ctx).topics(OrdersTopics)
    done = _run(ctx, lambda uow: inspect_quarantine(uow, quarantine_id, Verdict(verdict), topics, note), write=True)
    if done is None:
        typer.echo("not found or already inspected")
        raise typer.Exit(1)
    typer.echo(f"{done.quantity} unit(s) of batch {done.batch_id}: {verdict}")


@orders_app.command("show")
def orders_show(ctx: typer.Context, order_key: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """State, why it has no stock (if so), history, lines, reservations, allocations and ledger entries of one
    order."""

    ledger = CliRoot.of(ctx).schema("ledger")  # the ledger's tables, read-only: where the topology says they are

    async def work(uow: UnitOfWork) -> dict[str, Any] | None:
        detail = await order_detail(uow, order_key)
        if detail is not None:
            detail["ledger_entries"] = await ledger_entries_of(UnitOfWork(uow.conn, ledger), order_key)
        return detail

    detail = _run(ctx, work)
    if detail is None:
        typer.secho(f"unknown order {order_key}", fg="red", err=True)
        raise typer.Exit(1)
    _json(detail)


@orders_app.command("return-received")
def orders_return_received(
    ctx: typer.Context,
    order_key: str = typer.Argument(..., help="marketplace:shop:order"),
    at: str | None = typer.Option(None, "--at", help="When the parcel arrived (ISO time); default now."),
) -> None:
    """Record that a returned parcel is back in the workshop: its units go to quarantine for inspection."""
    from datetime import UTC, datetime

    from infra.messaging.envelope import make_envelope
    from services.contracts.marketplace import ORDER_STATUS_CHANGED, OrderStatusChanged

    parts = order_key.split(":")
    if len(parts) != 3 or not all(parts):
        typer.secho("ORDER_KEY must be marketplace:shop:order", fg="red", err=True)
        raise typer.Exit(2)
    when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    data = OrderStatusChanged(
        order_key=order_key,
        channel=parts[0],
        shop_id=parts[1],
        order_id=parts[2],
        raw_status="KARYA_RETURN_RECEIVED",
        update_time=when if when.tzinfo else when.replace(tzinfo=UTC),
    )
    envelope = make_envelope(
        type=ORDER_STATUS_CHANGED, source="karya/ops", subject=order_key, data=data.model_dump(mode="json")
    )

    root = CliRoot.of(ctx)

    async def send() -> None:
        producer = root.producer("karya-ops")
        await producer.start()
        try:
            topic = root.topics(OrdersTopics).order_events
            await producer.send_and_wait(topic, envelope.to_bytes(), key=order_key.encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    typer.echo(f"return of {order_key} recorded (event {envelope.event_id}); inspect it with `karya stock inspect`")
