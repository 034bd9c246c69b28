"""``karya dlq list|show|replay|discard``: dead letters across the services' ``dead_letters`` tables; ``karya dlq
parked``: the gateway's deliveries parked while their marketplace API is unreachable (not dead letters: retried).

Thin commands over :mod:`infra.messaging.dlq_admin`. A dead letter is named ``<schema>:<id>`` (``orders:42``).
Which schemas there are, and the role each is read as, come from the command's root (the services' topology):
the orders and ledger schemas as the service role (``DATABASE_URL``), the gateway's as the gateway role
(``KARYA_GATEWAY_DATABASE_URL``, the only one that may read its dead letters' payloads); ``list`` covers every
schema whose URL is set. Payloads are shown redacted by the gateway's rule, in the gateway's schema. Replays
and discards are audited as ``--as`` (else ``KARYA_OPERATOR``, else the login name); ``--max-replays``
(``KARYA_DLQ_MAX_REPLAYS``, default 3) is the loop guard.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

import typer

from infra.cli_root import ROLE_ENV, CliRoot, Role
from infra.db.unit_of_work import UnitOfWork
from infra.messaging.dlq_admin import (
    DEFAULT_MAX_REPLAYS,
    ActionOutcome,
    DeadLetterError,
    DeadLetterFilter,
    DeadLetterRow,
    State,
    discard_dead_letter,
    list_dead_letters,
    parse_ref,
    replay_dead_letter,
    show_dead_letter,
)
from services.gateway.parked_queries import ParkedDelivery, list_parked

dlq_app = typer.Typer(
    help="Dead letters: list, show, replay, discard (every action audited); parked gateway deliveries.",
    no_args_is_help=True,
)

_T = TypeVar("_T")
_DONE = {"replay": "replayed", "discard": "discarded"}


def _roles(ctx: typer.Context) -> dict[str, Role]:
    """Each service's schema and the role its dead letters are read as (the root's topology)."""
    root = CliRoot.of(ctx)
    return {root.schema(service): root.role_of(service) for service in root.services}


async def _on(
    ctx: typer.Context, schema: str, work: Callable[[UnitOfWork], Awaitable[_T]], *, write: bool = False
) -> _T:
    """``work`` in a unit of work on ``schema``, as the role that may read its dead letters (this command's root)."""
    root = CliRoot.of(ctx)
    role = _roles(ctx).get(schema)
    if role is None:
        raise DeadLetterError(f"unknown schema {schema!r} (one of {', '.join(_roles(ctx))})")
    if not root.has(role):
        raise DeadLetterError(f"{ROLE_ENV[role]} is not set (needed for the {schema} dead letters)")
    async with root.database(role, schema, name="karya-dlq") as db, db.begin() if write else db.read() as uow:
        return await work(uow)


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    try:
        return asyncio.run(coro)
    except DeadLetterError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, datetime) or hasattr(value, "hex") else value


def _row_dict(row: DeadLetterRow) -> dict[str, Any]:
    return {"ref": row.ref, **{k: _jsonable(v) for k, v in asdict(row).items() if k != "raw_key"}}


@dlq_app.command("list")
def list_command(
    ctx: typer.Context,
    schema: list[str] = typer.Option([], "--schema", help="orders | ledger | gateway (repeat; default: every one)."),
    topic: str | None = typer.Option(None, help="The original topic."),
    event_type: str | None = typer.Option(
        None, "--type", help="Event type, e.g. karya.marketplace.order_status_changed.v1."
    ),
    key: str | None = typer.Option(None, "--key", help="The record key (the order key for order events)."),
    error: str | None = typer.Option(None, help="The start of the error, e.g. 'rejected: unknown listing'."),
    since: datetime | None = typer.Option(None, help="Dead-lettered at or after (ISO time)."),
    until: datetime | None = typer.Option(None, help="Dead-lettered before (ISO time)."),
    state: str = typer.Option("open", help="open | replayed | discarded | all"),
    limit: int = typer.Option(50, min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """The newest dead letters matching every filter given, newest first."""
    if state not in ("open", "replayed", "discarded", "all"):
        raise typer.BadParameter("open | replayed | discarded | all", param_hint="--state")
    state_: State = state  # type: ignore[assignment]
    flt = DeadLetterFilter(topic, event_type, key, error, since, until, state_, limit)
    chosen = schema or [s for s, role in _roles(ctx).items() if CliRoot.of(ctx).has(role)]
    if not chosen:
        typer.secho("neither DATABASE_URL nor KARYA_GATEWAY_DATABASE_URL is set", fg="red", err=True)
        raise typer.Exit(2)

    def listing(schema: str) -> Callable[[UnitOfWork], Awaitable[list[DeadLetterRow]]]:
        return lambda uow: list_dead_letters(uow.conn, uow.schema, flt)

    rows = [row for s in chosen for row in _run(_on(ctx, s, listing(s)))]
    rows.sort(key=lambda r: r.created_at, reverse=True)
    for row in rows[:limit]:
        if as_json:
            typer.echo(json.dumps(_row_dict(row)))
        else:
            replays = f" replays={row.replay_count}" if row.replay_count else ""
            typer.echo(
                f"{row.ref}  {row.created_at:%Y-%m-%d %H:%M:%S}  {row.state}  {row.topic}  {row.event_type or '-'}  "
                f"key={row.key or '-'}  attempts={row.attempts}{replays}  {row.error}"
            )
    if not as_json:
        typer.echo(f"{min(len(rows), limit)} dead letter(s)")


@dlq_app.command("show")
def show_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="<schema>:<id>"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One dead letter: where it came from, its error, what was done with it, its headers and payload (redacted)."""
    schema, number = _parse(ctx, ref)
    redactor = CliRoot.of(ctx).schema("gateway")  # the redaction rule (redacted_envelope) is the gateway's
    detail = _run(_on(ctx, schema, lambda uow: show_dead_letter(uow.conn, uow.schema, number, redactor=redactor)))
    if detail is None:
        typer.secho(f"no dead letter {ref}", fg="red", err=True)
        raise typer.Exit(1)
    doc = {
        **_row_dict(detail.row),
        "headers": {k: v.decode(errors="replace") for k, v in detail.headers},
        "payload (redacted)": detail.payload.decode(errors="replace"),
    }
    typer.echo(json.dumps(doc, indent=None if as_json else 2))


@dlq_app.command("replay")
def replay_command(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(..., help="<schema>:<id> ..."),
    actor: str | None = typer.Option(None, "--as", help="Who acts (else KARYA_OPERATOR, else the login name)."),
    max_replays: int = typer.Option(
        DEFAULT_MAX_REPLAYS, envvar="KARYA_DLQ_MAX_REPLAYS", min=1, help="Loop guard: replays allowed per event."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would happen; change nothing."),
) -> None:
    """Publish dead letters again to their original topic (through the schema's outbox) with a replay count."""
    who = _actor(actor)

    def replay(schema: str, number: int) -> Callable[[UnitOfWork], Awaitable[ActionOutcome]]:
        return lambda uow: replay_dead_letter(
            uow.conn, uow.schema, number, actor=who, max_replays=max_replays, dry_run=dry_run
        )

    _report([_run(_on(ctx, s, replay(s, n), write=True)) for s, n in _parse_all(ctx, refs)], dry_run)


@dlq_app.command("discard")
def discard_command(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(..., help="<schema>:<id> ..."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit)."),
    actor: str | None = typer.Option(None, "--as", help="Who acts (else KARYA_OPERATOR, else the login name)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would happen; change nothing."),
) -> None:
    """Close dead letters without replaying them; they stay stored, with the reason and who discarded them."""
    who = _actor(actor)

    def discard(schema: str, number: int) -> Callable[[UnitOfWork], Awaitable[ActionOutcome]]:
        return lambda uow: discard_dead_letter(uow.conn, uow.schema, number, actor=who, reason=reason, dry_run=dry_run)

    _report([_run(_on(ctx, s, discard(s, n), write=True)) for s, n in _parse_all(ctx, refs)], dry_run)


@dlq_app.command("parked")
def parked_command(
    ctx: typer.Context,
    channel: str | None = typer.Option(None, help="Only this channel (tokopedia, shopee, tiktok_shop, blibli)."),
    limit: int = typer.Option(500, min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line (nothing when none is parked)."),
) -> None:
    """The gateway's deliveries parked while their marketplace API is unreachable, oldest first (no bodies).

    They are retried by the gateway with backoff and applied once the API answers: nothing to replay here."""
    gateway = CliRoot.of(ctx).schema("gateway")
    rows: list[ParkedDelivery] = _run(_on(ctx, gateway, lambda uow: list_parked(uow, channel=channel, limit=limit)))
    for row in rows:
        if as_json:
            typer.echo(json.dumps({k: _jsonable(v) for k, v in asdict(row).items()}))
        else:
            typer.echo(
                f"{row.event_id}  {row.channel}  {row.order_key}  attempts={row.attempts}  "
                f"since={row.parked_at:%Y-%m-%d %H:%M:%S}  age={_age(row.age_s)}  "
                f"next={row.next_attempt_at:%Y-%m-%d %H:%M:%S}  {row.reason}"
            )
    if not as_json:
        where = f" for {channel}" if channel else ""
        typer.echo(f"{len(rows)} parked delivery(ies){where}" if rows else f"nothing parked{where}")


def _age(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _parse(ctx: typer.Context, ref: str) -> tuple[str, int]:
    try:
        return parse_ref(ref, list(_roles(ctx)))
    except DeadLetterError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _parse_all(ctx: typer.Context, refs: list[str]) -> list[tuple[str, int]]:
    return [_parse(ctx, ref) for ref in refs]


def _actor(given: str | None) -> str:
    return (given or os.environ.get("KARYA_OPERATOR") or getpass.getuser()).strip()


def _report(outcomes: list[ActionOutcome], dry_run: bool) -> None:
    for o in outcomes:
        if o.refused is not None:
            typer.secho(f"{o.ref}: {o.action} refused: {o.refused}", fg="yellow")
        else:
            what = f"would {o.action}" if dry_run else _DONE[o.action]
            count = f" (replay {o.replay_count})" if o.replay_count else ""
            typer.echo(f"{o.ref}: {what} -> {o.topic}{count}")
    if any(o.refused is not None for o in outcomes):
        raise typer.Exit(1)
