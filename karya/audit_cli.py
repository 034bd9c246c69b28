"""``karya audit completeness``: did every record a consumer group committed past reach the database?

The consumer groups, their topics, inbox schemas and type filters are taken from the services' own wiring
(each service built by the composition root, :mod:`karya.services`, without connecting anything), under this process's
``KARYA_TOPIC_PREFIX``. Reads as the auditor role (``KARYA_AUDITOR_URL``) when it is set, else ``DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from infra.cli_root import CliRoot
from infra.messaging.completeness import MAX_LISTED_GAPS, Checkpoint, PartitionAudit, total_gaps
from infra.messaging.completeness_audit import AuditedConsumer, audit_completeness

audit_app = typer.Typer(help="Integrity audits across Kafka and the database.", no_args_is_help=True)

_TEXT_GAPS = 20


def render_table(audits: Sequence[PartitionAudit]) -> str:
    """The audit as a text table, one row per group and partition, then the gap offsets of each partition."""
    header = ("group", "topic", "partition", "checked", "records", "applied", "skipped", "dead-lettered", "gaps")
    rows: list[tuple[str, ...]] = [header]
    for a in audits:
        checked = "no commit" if a.end is None else f"{a.start}..{a.end}"
        if a.truncated:
            checked += f" (read to {a.read_to})"
        cells = (a.records, a.applied, a.skipped, a.dead_lettered, a.gap_count)
        rows.append((a.origin.group, a.origin.topic, str(a.origin.partition), checked, *map(str, cells)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    for a in audits:
        if a.gap_count:
            shown = a.gap_offsets(_TEXT_GAPS)
            more = f" (+{a.gap_count - len(shown)} more)" if a.gap_count > len(shown) else ""
            lines.append(f"gaps in {a.origin.group} {a.origin.topic}/{a.origin.partition} at offsets {shown}{more}")
    gaps = total_gaps(audits)
    lines.append(f"{gaps} gap(s) in {sum(1 for a in audits if a.gap_count)} partition(s)" if gaps else "no gaps")
    return "\n".join(lines)


def report_json(audits: Sequence[PartitionAudit]) -> dict[str, Any]:
    """The audit as one JSON object: every partition's row with its (bounded) gap offsets, and the total."""
    return {"gaps": total_gaps(audits), "partitions": [a.as_dict(MAX_LISTED_GAPS) for a in audits]}


@audit_app.command("completeness")
def completeness(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout instead of the table."),
    group: list[str] = typer.Option([], "--group", help="Audit only this consumer group (repeatable)."),
    limit: int = typer.Option(0, help="Read at most this many offsets per partition (0: all)."),
    checkpoint: Path | None = typer.Option(
        None, help="JSON file: start after what it records as verified and write the new state back."
    ),
) -> None:
    """Per consumer group and partition, every record up to the committed offset has an inbox row or a dead
    letter (records of types the consumer does not act on excepted). Exit 1 when any gap is found."""
    root = CliRoot.of(ctx)
    if not root.has("auditor"):
        typer.secho("neither KARYA_AUDITOR_URL nor DATABASE_URL is set", fg="red", err=True)
        raise typer.Exit(2)
    from karya.services import wired_consumers  # the services' own wiring, built without connecting anything

    wired = wired_consumers(root.kafka.topic_prefix)
    consumers = [c for c in wired if not group or c.group_id in group]
    if group and len(consumers) < len(set(group)):
        known = ", ".join(c.group_id for c in wired)
        typer.secho(f"unknown consumer group; the wired ones are: {known}", fg="red", err=True)
        raise typer.Exit(2)
    state = Checkpoint()
    if checkpoint is not None and checkpoint.exists():
        state = Checkpoint.from_json(json.loads(checkpoint.read_text()))
    audits = asyncio.run(_audit(root, consumers, state, limit or None))
    if checkpoint is not None:
        state.advance(audits)
        checkpoint.write_text(json.dumps(state.to_json(), indent=1) + "\n")
    typer.echo(json.dumps(report_json(audits)) if as_json else render_table(audits))
    if total_gaps(audits):
        raise typer.Exit(1)


async def _audit(
    root: CliRoot, consumers: Sequence[AuditedConsumer], state: Checkpoint, limit: int | None
) -> list[PartitionAudit]:
    async with root.engine("auditor", pool_size=2, name="karya-audit") as engine:
        return await audit_completeness(
            consumers,
            engine=engine,
            bootstrap_servers=root.kafka.bootstrap_servers,
            checkpoint=state,
            limit=limit,
            progress=lambda line: print(f"audit: {line}", file=sys.stderr, flush=True),
        )
