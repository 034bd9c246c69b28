"""`karya ledger verify` (every segment's chain, every anchor, every balance; with `--anchor FILE` it publishes the
latest anchor), `karya ledger anchor` (take one now) and `karya ledger anchor-check FILE` (every published anchor
against the database today), registered on :data:`services.ledger.cli.ledger_app`. The anchors:
:mod:`services.ledger.chain_anchor`; the published lines: :mod:`services.ledger.anchor`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger.anchor import Anchor, AnchorCheck, anchor_key, append_anchor, check_anchors, read_anchors
from services.ledger.chain_anchor import AnchorVerification, take_anchor, verify_anchors
from services.ledger.cli import _json, _run, ledger_app
from services.ledger.domain.anchors import ChainAnchor
from services.ledger.reports import BalanceMismatch, Verification, verify_balances, verify_chain


@ledger_app.command("verify")
def verify(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json"),
    anchor_file: Path | None = typer.Option(
        None,
        "--anchor",
        dir_okay=False,
        help="Take an anchor first; after an intact verification, append the latest anchor to this file.",
    ),
    anchor_key_env: str | None = typer.Option(
        None, "--anchor-key-env", help="Sign the anchor line with HMAC-SHA256, keyed by this environment variable."
    ),
) -> None:
    """Recompute every segment's hash chain and every anchor over the segment heads (name the first broken link and
    the first broken anchor) and every account balance from the journal lines (name each account whose stored
    balance differs); exit 1 on any finding. With --anchor, a fresh anchor is taken first (as the service role) and
    an intact result appends the latest anchor's number and hash to a file (the daily anchor; `karya ledger
    anchor-check` reads it)."""
    if anchor_key_env is not None and anchor_file is None:
        raise typer.BadParameter("--anchor-key-env signs the line --anchor writes", param_hint="--anchor-key-env")
    key = anchor_key(CliRoot.of(ctx), anchor_key_env)

    def progress(done: int, total: int) -> None:
        typer.echo(f"verified {done:,} of {total:,} entries", err=True)

    async def work(uow: UnitOfWork) -> tuple[Verification, AnchorVerification, int, list[BalanceMismatch]]:
        chain = await verify_chain(uow, progress)
        anchors = await verify_anchors(uow)
        checked, mismatches = await verify_balances(uow)
        return chain, anchors, checked, mismatches

    if anchor_file is not None:  # before the verification, so that it covers the anchor published
        _run(ctx, lambda uow: take_anchor(uow, "manual", datetime.now(UTC)), read_only=False)
    result, anchors, checked, mismatches = _run(ctx, work)
    intact = result.first_broken is None and anchors.first_broken is None and not mismatches
    anchored = None
    if intact and anchor_file is not None and anchors.latest is not None:
        anchored = Anchor.here_and_now(anchors.latest)
        anchored = anchored if key is None else anchored.signed(key)
        append_anchor(anchor_file, anchored)
    if as_json:
        _json(
            {
                **verification_json(result, anchors),
                "accounts_checked": checked,
                "balance_mismatches": [m.__dict__ for m in mismatches],
                "intact": intact,
                **({"anchored": anchored.line()} if anchored is not None else {}),
            }
        )
    else:
        print_verification(result, anchors)
        if not mismatches:
            typer.echo(f"balances agree with the journal lines: {checked} accounts")
        for m in mismatches:
            typer.secho(_mismatch_text(m), fg="red", err=True)
        if anchored is not None:
            typer.echo(f"anchored {anchored.label} in {anchor_file}" + (" (signed)" if key else ""))
    if not intact:
        if anchor_file is not None:
            typer.secho(f"nothing anchored in {anchor_file}: the verification found a problem", fg="red", err=True)
        raise typer.Exit(1)


def verification_json(chain: Verification, anchors: AnchorVerification) -> dict[str, Any]:
    """The chains' and the anchors' verification as JSON data (``verify --json``, ``anchor-check --json``)."""
    latest = anchors.latest
    return {
        "entries": chain.entries,
        "head_hash": chain.head_hash,
        "first_broken": chain.first_broken,
        "problem": chain.problem,
        "heads": [[h.segment, h.sequence, h.hash] for _, h in sorted(chain.heads.items())],
        "anchors": anchors.anchors,
        "latest_anchor": None
        if latest is None
        else {"anchor_no": latest.anchor_no, "anchor_hash": latest.anchor_hash, "taken_at": latest.taken_at},
        "first_broken_anchor": anchors.first_broken,
        "anchor_problem": anchors.problem,
    }


def print_verification(chain: Verification, anchors: AnchorVerification) -> None:
    """The chains' and the anchors' verification as text: intact with the heads' root and the latest anchor, or
    the first broken link and the first broken anchor, named (on stderr)."""
    if chain.first_broken is None:
        segments = len(chain.heads)
        typer.echo(f"chain intact: {chain.entries} entries in {segments} segments; heads root {chain.head_hash}")
    else:
        typer.secho(f"chain BROKEN at entry {chain.first_broken}: {chain.problem}", fg="red", err=True)
    latest = anchors.latest
    if anchors.first_broken is not None:
        typer.secho(f"anchors BROKEN at anchor {anchors.first_broken}: {anchors.problem}", fg="red", err=True)
    elif latest is None:
        typer.echo("anchors intact: none taken yet")
    else:
        typer.echo(
            f"anchors intact: {anchors.anchors} anchors; latest anchor {latest.anchor_no} taken at "
            f"{latest.taken_at.astimezone(UTC).isoformat()}, hash {latest.anchor_hash}"
        )


def _mismatch_text(m: BalanceMismatch) -> str:
    return (
        f"balance of {m.account} DIFFERS from its journal lines: stored debit {m.stored_debit:,} credit "
        f"{m.stored_credit:,}, lines debit {m.lines_debit:,} credit {m.lines_credit:,}"
    )


@ledger_app.command("anchor")
def anchor_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Take an anchor now over every segment's chain head (reason manual, as the service role) and print it: its
    number, hash, time, the root of the heads and each head."""

    async def work(uow: UnitOfWork) -> ChainAnchor:
        taken = await take_anchor(uow, "manual", datetime.now(UTC))
        assert taken is not None, "a manual anchor is always taken"
        return taken

    taken = _run(ctx, work, read_only=False)
    heads = [[h.segment, h.sequence, h.hash] for h in taken.heads]
    if as_json:
        _json(
            {
                "anchor_no": taken.anchor_no,
                "anchor_hash": taken.anchor_hash,
                "taken_at": taken.taken_at,
                "reason": taken.reason,
                "heads_root": taken.heads_root,
                "prev_hash": taken.prev_hash,
                "heads": heads,
            }
        )
        return
    at = taken.taken_at.astimezone(UTC).isoformat()
    typer.echo(f"anchor {taken.anchor_no} taken at {at}: hash {taken.anchor_hash}")
    typer.echo(f"heads root {taken.heads_root} over {len(heads)} segments:")
    for segment, sequence, hash_ in heads:
        typer.echo(f"  {segment:<8} entry {sequence:>10}  {hash_}")


@ledger_app.command("anchor-check")
def anchor_check(
    ctx: typer.Context,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A file written by verify --anchor."),
    anchor_key_env: str | None = typer.Option(
        None, "--anchor-key-env", help="Check every line's HMAC-SHA256 with the key in this environment variable."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Verify every segment and every anchor and compare every published anchor with the database today (a line of
    the format before segments: the legacy chain's entry at its sequence): an anchor hash the database no longer has
    (or a bad signature, a broken chain or anchor) is tampering, named; exit 1."""
    key = anchor_key(CliRoot.of(ctx), anchor_key_env)
    anchors = read_anchors(path)

    async def work(uow: UnitOfWork) -> AnchorCheck:
        return await check_anchors(uow, anchors, key)

    checked = _run(ctx, work)
    chain, findings = checked.chain, checked.findings
    intact = chain.first_broken is None and checked.anchors.first_broken is None and not findings and bool(anchors)
    if as_json:
        _json(
            {
                "lines": len(anchors),
                "signatures_checked": key is not None,
                "verification": verification_json(chain, checked.anchors),
                "findings": [asdict(f) for f in findings],
                "intact": intact,
            }
        )
    else:
        if chain.first_broken is not None or checked.anchors.first_broken is not None:
            print_verification(chain, checked.anchors)
        for finding in findings:
            typer.secho(finding.problem, fg="red", err=True)
        if not anchors:
            typer.secho(f"{path} holds no anchor", fg="red", err=True)
        elif intact:
            signed = "signatures checked" if key is not None else "signatures NOT checked (no --anchor-key-env)"
            typer.echo(
                f"{len(anchors)} published anchors match the database ({chain.entries} entries, "
                f"{checked.anchors.anchors} anchors, intact); {signed}"
            )
    if not intact:
        raise typer.Exit(1)
