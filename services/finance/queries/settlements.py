"""An order's settlements as the ledger posted them: one per ``<order>:settlement:<settlement id>`` entry, with
the marketplace's own settlement id and amounts from the payload the ledger kept in ``order_facts.settlement``
(:class:`services.ledger.domain.facts.OrderFacts`), and the entry that posted it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.finance.scope import ReadModel
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.postings import settlement_key


async def order_settlements(reads: ReadModel, order_key: str) -> list[dict[str, Any]]:
    """The settlements of ``order_key`` in the viewer's scope, in posting order: settlement id, the marketplace's
    settlement id (None when the channel gave none), gross and net payout as posted (a re-read of a marketplace
    settlement posts its difference, which may be negative), when, and the entry's sequence."""
    prefix = settlement_key(order_key, "")
    rows = (
        await reads.conn.execute(
            text(
                "SELECT e.sequence, e.posting_key, e.effective_at, f.lapas_id, f.completion, f.settlement "
                f"FROM {reads.ledger('journal_entries')} e JOIN {reads.ledger('order_facts')} f "
                "ON f.order_key = e.order_key WHERE e.order_key = :k AND starts_with(e.posting_key, :p) "
                "ORDER BY e.sequence"
            ),
            {"k": order_key, "p": prefix},
        )
    ).all()
    if not rows:
        return []
    first = rows[0]
    facts = OrderFacts.stored(order_key, first.lapas_id, first.completion, first.settlement, 0)
    posted = {str(s.get("settlement_id")): s for s in facts.settlements}
    found = []
    for r in rows:
        settlement_id = r.posting_key[len(prefix) :]
        payload = posted.get(settlement_id, {})
        found.append(
            {
                "settlement_id": settlement_id,
                "marketplace_settlement_id": payload.get("marketplace_settlement_id"),
                "gross": _rupiah(payload.get("gross_amount")),
                "net_payout": _rupiah(payload.get("net_payout")),
                "settled_at": r.effective_at,
                "sequence": r.sequence,
            }
        )
    return found


def _rupiah(value: object) -> int | None:
    return None if value is None else int(str(value))
