"""`karya ledger pending|closed|allocate|unallocated`: the money and events that wait — events parked until their
order catches up, events closed without posting, orders whose distribution waits in unallocated proceeds, and a
person's allocation of one (registers on :data:`services.ledger.cli.ledger_app`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import typer

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.dead_letters import write_dead_letters
from services.ledger.adapters.closed_repo import closed_events
from services.ledger.adapters.facts_repo import held_orders, parked_events
from services.ledger.allocation import AllocationOutcome, allocate, held_row, parse_pick
from services.ledger.cli import _json, _run, ledger_app
from services.ledger.cli_output import when
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.names import CONSUMER
from services.ledger.outbound import LedgerTopics
from services.ledger.posting import PostEvents
from services.ledger.redrive import redrive_parked, refusal_dead_letters
from services.presentation.exports import UTC_ZONE


@ledger_app.command("pending")
def pending_cmd(
    ctx: typer.Context,
    older_than: str | None = typer.Option(None, "--older-than", help="Only events parked longer, e.g. 1d, 12h, 30m."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Settlements and refunds parked until their order catches up: what waits, for what, since when."""
    try:
        threshold = None if older_than is None else parse_duration(older_than)
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    parked = _run(ctx, lambda uow: parked_events(uow, threshold))
    if as_json:
        _json([{**p.__dict__, "event_id": str(p.event_id)} for p in parked])
        return
    # Plain lines, one per event (no table: order keys and event ids stay whole and greppable).
    for p in parked:
        typer.echo(
            f"{when(p.received_at, UTC_ZONE)}  {format_age(p.age_seconds):>7}  waiting for {p.waiting_for:<10}  "
            f"{p.type.removeprefix('karya.').rsplit('.', 1)[0]:<32}  {p.order_key}  {p.event_id}"
        )
    typer.echo(f"{len(parked)} parked" + ("" if older_than is None else f" for longer than {older_than}"))


@ledger_app.command("redrive")
def redrive_cmd(
    ctx: typer.Context,
    after: str = typer.Option("0s", "--after", help="Only orders with an event not planned for this long, e.g. 5m."),
    limit: int = typer.Option(500, "--limit", min=1, help="At most this many orders."),
) -> None:
    """Plan the parked events again now, as the ledger process does every few minutes: what can post posts, what a
    rule refuses is dead-lettered with its rule, what still waits stays parked."""
    try:
        threshold = parse_duration(after)
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    topics = CliRoot.of(ctx).topics(LedgerTopics)
    outcome = _run(
        ctx,
        lambda uow: redrive_parked(uow, PostEvents(topics), topics.settlements, threshold, limit),
        read_only=False,
    )
    for r in outcome.refused:
        typer.secho(f"{r.envelope.subject}  {r.envelope.event_id}  dead-lettered: {r.reason}", fg="yellow", err=True)
    plural = "" if outcome.orders == 1 else "s"
    typer.echo(
        f"planned the parked events of {outcome.orders} order{plural} again: {outcome.released} released "
        f"({len(outcome.refused)} dead-lettered); the others still wait"
    )


@ledger_app.command("closed")
def closed_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Events closed without posting: refunds of orders that ended returned or cancelled before completion (nothing
    was booked, nothing to reverse), and the ending events that said so."""
    closed = _run(ctx, closed_events)
    if as_json:
        _json([{**c.__dict__, "event_id": str(c.event_id)} for c in closed])
        return
    for c in closed:
        kind = c.event_type.removeprefix("karya.").rsplit(".", 1)[0]
        typer.echo(f"{when(c.closed_at, UTC_ZONE)}  {kind:<32}  {c.order_key}  {c.event_id}  {c.reason}")
    typer.echo(f"{len(closed)} closed without posting")


_DURATION = re.compile(r"(\d+)([dhms])")
_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(value: str) -> timedelta:
    """``1d``, ``12h``, ``30m``, ``45s`` or a sequence of them (``1d12h``) as a timedelta."""
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r} (use e.g. 1d, 12h, 30m, 1d12h)")
    return timedelta(seconds=sum(int(n) * _SECONDS[u] for n, u in parts))


def format_age(seconds: float) -> str:
    """An age as its two largest units: ``3d 4h``, ``5h 12m``, ``42s``."""
    left, parts = int(seconds), list[str]()
    for unit, size in _SECONDS.items():
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


@ledger_app.command("allocate")
def allocate_cmd(
    ctx: typer.Context,
    order_key: str,
    batches: list[str] = typer.Option(..., "--batch", help="BATCH:QTY, once per production batch."),
    acting: str | None = typer.Option(None, "--as", envvar="KARYA_USER", help="Who allocates (or KARYA_USER)."),
) -> None:
    """Name the batches of an order whose distribution waits (validated against the catalogue; posts once).
    Who allocated travels with the announcement to the orders service."""
    root = CliRoot.of(ctx)
    topics, catalogue = root.topics(LedgerTopics), root.schema("orders")  # the catalogue: the orders service's

    async def work(uow: UnitOfWork) -> AllocationOutcome:
        outcome = await allocate(uow, topics, order_key, picks, catalogue_schema=catalogue, allocated_by=acting)
        # Parked events the rerun refused by a rule: dead letters with their rule, in the allocation's transaction.
        dead = refusal_dead_letters(outcome.refused, topics.settlements)
        await write_dead_letters(uow.conn, uow.schema, CONSUMER, dead)
        return outcome

    try:
        picks = [parse_pick(b) for b in batches]
        outcome = _run(ctx, work, read_only=False)
    except LedgerDomainError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    if outcome.already_allocated:
        typer.echo(f"{order_key} was already allocated to these batches")
    elif outcome.waiting_for_settlement:
        typer.echo(f"allocated {order_key}; its settlement will distribute it")
    else:
        typer.echo(f"allocated {order_key}: posted " + ", ".join(outcome.posted))
    for r in outcome.refused:
        typer.secho(f"an event parked for {order_key} was refused and dead-lettered: {r.reason}", fg="yellow", err=True)


@ledger_app.command("unallocated")
def unallocated_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Orders whose distribution waits in unallocated proceeds: how much, since when, and why."""
    rows = [held_row(facts, since) for facts, since in _run(ctx, held_orders)]
    if as_json:
        _json(rows)
        return
    for r in rows:
        since = when(datetime.fromisoformat(r["since"]), UTC_ZONE)
        typer.echo(f"{since}  {r['order_key']}  {r['lapas_id']}  held {r['held']:,}  {r['reason']}")
    typer.echo(f"{len(rows)} orders unallocated, {sum(r['held'] for r in rows):,} rupiah held")
