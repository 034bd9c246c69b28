"""`karya ledger settle pnbp|supplier|capital propose|approve|pending` and `karya ledger settle pending`: settling
what is owed — a PNBP deposit to the treasury, a supplier payment, a use of production capital — proposed by one
person and posted when another approves (a proposal is rejected or withdrawn with `karya ledger reject|withdraw`,
as a correction is).

Thin translators onto :mod:`services.ledger.settle`: parse the arguments, run one transaction, print the outcome. A
refusal by a ledger rule is printed on stderr and exits 1 with nothing written; a malformed option exits 2. Lists
print ``--format table|json`` (:mod:`services.ledger.cli_output`). Registered on
:data:`services.ledger.cli.ledger_app` as ``settle``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger import settle
from services.ledger.cli import _run, ledger_app
from services.ledger.cli_corrections import _ACTING_USER, _refusing
from services.ledger.cli_output import FORMAT_OPTION, ZONE_OPTION, Format, money, print_json, print_table, when, zone_of
from services.ledger.domain.corrections import CorrectionKind, Proposal
from services.ledger.domain.settlements import Settlement
from services.ledger.outbound import LedgerTopics

settle_app = typer.Typer(help="Settle what is owed: PNBP deposits, supplier payments, production capital.")
ledger_app.add_typer(settle_app, name="settle")

_REASON = typer.Option(None, "--reason", help="Why (default: what is settled).")
_BANK = typer.Option("main", "--bank", help="The lapas' bank account paid from (asset:bank:<lapas>:<bank>).")
_EVERY = typer.Option(False, "--all", help="Also the approved, rejected and withdrawn ones.")


def _propose(ctx: typer.Context, settlement: Settlement, reason: str | None, acting: str) -> None:
    async def work(uow: UnitOfWork) -> str:
        done = await settle.propose(uow, settlement, reason=reason, proposed_by=acting, at=datetime.now(UTC))
        p = done.proposal
        said = "proposed" if done.created else "was already proposed as"
        return (
            f"{settlement.what} of {settlement.amount:,} {said} proposal {p.proposal_id} ({p.posting_key}) by "
            f"{p.draft.proposed_by}; another person approves it with: karya ledger settle "
            f"{_NAMES[settlement.kind]} approve {p.proposal_id} --as USER"
        )

    _refusing(ctx, work)


def _approve(ctx: typer.Context, proposal_id: int, acting: str, kind: CorrectionKind | None) -> None:
    topics = CliRoot.of(ctx).topics(LedgerTopics)

    async def work(uow: UnitOfWork) -> str:
        done = await settle.approve(uow, topics, proposal_id, approved_by=acting, at=datetime.now(UTC), kind=kind)
        return f"proposal {proposal_id} approved by {acting}: posted {done.posting_key} (sequence {done.sequence})"

    _refusing(ctx, work)


def _pending(ctx: typer.Context, kind: CorrectionKind | None, every: bool, fmt: Format, tz: str) -> None:
    zone = zone_of(tz)
    listed: list[Proposal] = _run(ctx, lambda uow: settle.settlements(uow, open_only=not every, kind=kind))
    views = [settle.settlement_view(p) for p in listed]
    if fmt is Format.JSON:
        print_json(views)
        return
    if fmt is not Format.TABLE:
        raise typer.BadParameter("settlements print as table or json", param_hint="--format")
    headers = ["id", "kind", "owner", "amount", "reference", "NTPN", "proposed by", "proposed at", "state"]
    rows = [
        [
            str(v["proposal_id"]),
            str(v["kind"]),
            str(v["owner"]),
            money(int(str(v["amount"]))),
            str(v["reference"]),
            str(v["ntpn"] or ""),
            str(v["proposed_by"]),
            when(p.proposed_at, zone),
            str(v["state"]) + ("" if p.decision is None else f" by {p.decision.decided_by}"),
        ]
        for p, v in zip(listed, views, strict=True)
    ]
    title = "Settlements" if every else "Settlements waiting for a second person"
    print_table(title, headers, rows, right=("amount",))


@settle_app.command("pending")
def pending_cmd(ctx: typer.Context, every: bool = _EVERY, fmt: Format = FORMAT_OPTION, tz: str = ZONE_OPTION) -> None:
    """Settlements of every kind waiting for a second person (``--all``: with the decided ones)."""
    _pending(ctx, None, every, fmt, tz)


_NAMES = {
    CorrectionKind.PNBP_DEPOSIT: "pnbp",
    CorrectionKind.SUPPLIER_PAYMENT: "supplier",
    CorrectionKind.CAPITAL_USE: "capital",
}


def _kind_app(kind: CorrectionKind, help_text: str) -> typer.Typer:
    """The ``approve`` and ``pending`` commands of one kind (its ``propose`` is registered below)."""
    app = typer.Typer(help=help_text, no_args_is_help=True)
    settle_app.add_typer(app, name=_NAMES[kind])

    @app.command("approve")
    def approve_cmd(ctx: typer.Context, proposal_id: int, acting: str = _ACTING_USER) -> None:
        """Approve a proposal of this kind and post it (never by its proposer; checked against the balance now)."""
        _approve(ctx, proposal_id, acting, kind)

    @app.command("pending")
    def kind_pending_cmd(
        ctx: typer.Context, every: bool = _EVERY, fmt: Format = FORMAT_OPTION, tz: str = ZONE_OPTION
    ) -> None:
        """Proposals of this kind waiting for a second person (``--all``: with the decided ones)."""
        _pending(ctx, kind, every, fmt, tz)

    return app


pnbp_app = _kind_app(CorrectionKind.PNBP_DEPOSIT, "PNBP deposits to the state treasury (SIMPONI).")
supplier_app = _kind_app(CorrectionKind.SUPPLIER_PAYMENT, "Payments of what suppliers are owed.")
capital_app = _kind_app(CorrectionKind.CAPITAL_USE, "Materials bought with a lapas' production capital.")


@pnbp_app.command("propose")
def pnbp_propose(
    ctx: typer.Context,
    lapas: str,
    amount: int = typer.Argument(..., help="Whole rupiah."),
    billing_code: str = typer.Option(..., "--billing-code", help="The SIMPONI billing code (15 digits)."),
    ntpn: str = typer.Option(..., "--ntpn", help="The deposit's receipt number NTPN (16 letters or digits)."),
    bank: str = _BANK,
    reason: str | None = _REASON,
    acting: str = _ACTING_USER,
) -> None:
    """Propose depositing AMOUNT of LAPAS' PNBP payable to the treasury (Dr PNBP payable / Cr bank)."""
    settlement = Settlement(
        CorrectionKind.PNBP_DEPOSIT, lapas, amount, billing_code.strip(), ntpn.strip().upper(), bank
    )
    _propose(ctx, settlement, reason, acting)


@supplier_app.command("propose")
def supplier_propose(
    ctx: typer.Context,
    supplier: str,
    amount: int = typer.Argument(..., help="Whole rupiah."),
    lapas: str = typer.Option(..., "--lapas", help="The lapas paying (its supplier payable and bank)."),
    reference: str = typer.Option(..., "--reference", help="The payment reference (once per lapas and supplier)."),
    bank: str = _BANK,
    reason: str | None = _REASON,
    acting: str = _ACTING_USER,
) -> None:
    """Propose paying SUPPLIER AMOUNT of what LAPAS owes it (Dr supplier payable / Cr the lapas' bank)."""
    _propose(
        ctx,
        Settlement(CorrectionKind.SUPPLIER_PAYMENT, supplier, amount, reference.strip(), None, bank, lapas.strip()),
        reason,
        acting,
    )


@capital_app.command("propose")
def capital_propose(
    ctx: typer.Context,
    lapas: str,
    amount: int = typer.Argument(..., help="Whole rupiah."),
    reference: str = typer.Option(..., "--reference", help="The purchase reference (once per lapas)."),
    bank: str = _BANK,
    reason: str | None = _REASON,
    acting: str = _ACTING_USER,
) -> None:
    """Propose spending AMOUNT of LAPAS' production capital on materials (Dr production materials / Cr bank)."""
    _propose(ctx, Settlement(CorrectionKind.CAPITAL_USE, lapas, amount, reference.strip(), None, bank), reason, acting)
