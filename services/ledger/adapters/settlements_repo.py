"""Settlement proposals by posting key (a settlement is a correction proposal of a settlement kind whose ``entry``
names the key it posts under; ``ledger_0011``; callers hold the chain head, as for every proposal), and the
registry's verdict on a payout's payee."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.corrections_repo import load_proposal
from services.ledger.domain.corrections import Proposal
from services.ledger.domain.settlements import RegistryVerdict


async def open_proposal_of_key(uow: UnitOfWork, posting_key: str) -> Proposal | None:
    """The open (neither approved, rejected nor withdrawn) proposal to post under ``posting_key``, if any."""
    proposal_id = (
        await uow.conn.execute(
            text(
                f"SELECT p.proposal_id FROM {uow.table('correction_proposals')} p "
                f"WHERE p.entry ? 'posting_key' AND p.entry ->> 'posting_key' = :k "
                f"AND NOT EXISTS (SELECT 1 FROM {uow.table('correction_approvals')} a "
                "WHERE a.proposal_id = p.proposal_id) "
                f"AND NOT EXISTS (SELECT 1 FROM {uow.table('correction_closures')} c "
                "WHERE c.proposal_id = p.proposal_id) "
                "ORDER BY p.proposal_id LIMIT 1"
            ),
            {"k": posting_key},
        )
    ).scalar_one_or_none()
    return None if proposal_id is None else await load_proposal(uow, int(proposal_id))


async def registry_verdict(
    uow: UnitOfWork, inmate_id: str, registration_no: str, full_name: str | None, on_day: date
) -> RegistryVerdict:
    """What the inmate registry says of the payee a payout names (``ledger.registry_payee``, ``ledger_0011``: a
    function owned by the migrator that reads the orders' registry, which this role may not, and answers only a
    verdict). The registration number and name are bound parameters, never logged."""
    verdict = (
        await uow.conn.execute(
            text(f"SELECT {uow.table('registry_payee')}(:i, :r, :n, :d)"),
            {"i": inmate_id, "r": registration_no, "n": full_name, "d": on_day},
        )
    ).scalar_one()
    return RegistryVerdict(verdict)
