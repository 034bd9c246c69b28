"""`karya ledger anchor-check FILE`: every head anchored by `karya ledger verify --anchor FILE` against the chain
today (registered on :data:`services.ledger.cli.ledger_app`; the anchor itself: :mod:`services.ledger.anchor`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger.anchor import AnchorFinding, anchor_key, check_anchors, read_anchors
from services.ledger.cli import _json, _run, ledger_app
from services.ledger.reports import Verification


@ledger_app.command("anchor-check")
def anchor_check(
    ctx: typer.Context,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A file written by verify --anchor."),
    anchor_key_env: str | None = typer.Option(
        None, "--anchor-key-env", help="Check every line's HMAC-SHA256 with the key in this environment variable."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recompute the chain and compare every anchored head with the entry at its sequence today: an anchored hash
    the journal no longer has (or a bad signature, or a broken chain) is tampering, named; exit 1."""
    key = anchor_key(CliRoot.of(ctx), anchor_key_env)
    anchors = read_anchors(path)

    async def work(uow: UnitOfWork) -> tuple[Verification, list[AnchorFinding]]:
        return await check_anchors(uow, anchors, key)

    chain, findings = _run(ctx, work)
    intact = chain.first_broken is None and not findings and bool(anchors)
    if as_json:
        _json(
            {
                "anchors": len(anchors),
                "signatures_checked": key is not None,
                "chain": chain.__dict__,
                "findings": [asdict(f) for f in findings],
                "intact": intact,
            }
        )
    else:
        if chain.first_broken is not None:
            typer.secho(f"chain BROKEN at entry {chain.first_broken}: {chain.problem}", fg="red", err=True)
        for finding in findings:
            typer.secho(finding.problem, fg="red", err=True)
        if not anchors:
            typer.secho(f"{path} holds no anchor", fg="red", err=True)
        elif intact:
            signed = "signatures checked" if key is not None else "signatures NOT checked (no --anchor-key-env)"
            typer.echo(f"{len(anchors)} anchored heads match the chain ({chain.entries} entries, intact); {signed}")
    if not intact:
        raise typer.Exit(1)
