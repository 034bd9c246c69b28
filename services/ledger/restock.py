"""Restocked returns: the material of units that came back sellable is taken back from the supplier.

The orders service announces ``units_restocked`` when an inspection puts an order's returned units back in stock
(``karya stock inspect --verdict restock``). Those units will be sold again, and their next sale's distribution owes
the supplier their material again; so the material the order's distribution credited the supplier for them is
reversed, once, under ``<order>:restock:<restock id>``:

- Dr ``liability:supplier_payable:<supplier>`` / Cr ``expense:material_cost:<lapas>`` — quantity × the batch's
  unit material cost as the order's allocation carried it (what its distribution credited);
- Dr ``expense:capital_allocation:<lapas>`` / Cr ``equity:production_capital:<lapas>`` — the same amount: the
  workshop's production capital holds the restocked units, and it is what absorbed the material leg of the refund's
  take-back (the refund planner treats material as not restockable, ``docs/accounting.md`` Refunds, step 4).

So the order's revenue − fees − tax − distribution is unchanged whatever the order of refund and restock, and no
unit's material is owed twice. An order the ledger never saw completed booked nothing: its restock is skipped.
A restock before the order's distribution is refused (``distributed_first``: replay the dead letter once it is
distributed), as is one of a batch the order was not allocated (``batch_allocated``) or of more units than it
took from the batch (``quantity_fits``).

*load → plan → write* in the caller's unit of work: the orders' facts (locked), :func:`plan_restock` (pure), the
entry and its ``entry_posted`` — each event in a savepoint, so a refusal found while posting undoes only it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from infra.db.unit_of_work import UnitOfWork
from infra.errors import describe_error, error_text
from infra.messaging.envelope import Envelope
from services.contracts.orders import UnitsRestocked
from services.ledger.adapters.facts_repo import load_facts
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.domain import accounts
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.journal import EntryKind, JournalEntry, LineBuilder, request_hash
from services.ledger.outbound import LedgerTopics, entry_posted_messages
from services.ledger.posting_plan import Refused

__all__ = ["RestockRefused", "plan_restock", "post_restocks", "restock_key"]

# The entry reverses distribution legs because of a return, like a refund's reversal per batch.
_KIND = EntryKind.REFUND_REVERSAL


class RestockRefused(LedgerDomainError):
    """A restock the ledger cannot book (the rule is named in the message)."""


def restock_key(order_key: str, restock_id: int) -> str:
    """The posting key of one restocked lot of an order."""
    return f"{order_key}:restock:{restock_id}"


def plan_restock(order: OrderFacts | None, restock: UnitsRestocked) -> JournalEntry | None:
    """The entry that takes the material of ``restock``'s units back from the supplier (see the module docstring);
    ``None`` when there is nothing to book (no completion, or no material cost). Pure.

    Raises:
        RestockRefused: naming the rule broken (``batch_allocated``, ``quantity_fits``, ``distributed_first``).
    """
    if order is None:
        return None
    key = restock.order_key
    allocations: list[dict[str, Any]] = order.effective_completion().get("allocations") or []
    batch = next((a for a in allocations if a.get("batch_id") == restock.batch_id), None)
    if batch is None:
        raise RestockRefused(
            f"restock refused (batch_allocated): order {key} was not allocated batch {restock.batch_id}"
        )
    if restock.quantity > int(batch["quantity"]):
        raise RestockRefused(
            f"restock refused (quantity_fits): {restock.quantity} units of batch {restock.batch_id}, order {key} took "
            f"{batch['quantity']}"
        )
    if not order.distributed:
        raise RestockRefused(
            f"restock refused (distributed_first): order {key} is not distributed yet; replay it once it is"
        )
    amount = restock.quantity * int(batch["unit_material_cost"])
    if amount == 0:
        return None
    lapas = str(batch.get("lapas_id") or order.lapas_id)
    lines = LineBuilder()
    lines.debit(accounts.supplier_payable(str(batch["supplier_id"])), amount)
    lines.credit(accounts.material_cost_expense(lapas), amount)
    lines.debit(accounts.capital_allocation_expense(lapas), amount)
    lines.credit(accounts.production_capital(lapas), amount)
    request = restock.model_dump(mode="json")
    return JournalEntry(
        posting_key=restock_key(key, restock.restock_id),
        request_hash=request_hash(_KIND, request, part="restock"),
        kind=_KIND,
        memo=f"order {key}, batch {restock.batch_id}: {restock.quantity} returned unit(s) restocked, material "
        f"{amount} taken back from the supplier to production capital",
        effective_at=restock.restocked_at,
        lines=lines.lines(),
        order_key=key,
        batch_id=restock.batch_id,
    )


async def post_restocks(uow: UnitOfWork, topics: LedgerTopics, envelopes: Sequence[Envelope]) -> list[Refused]:
    """Book each ``units_restocked`` of ``envelopes`` in ``uow`` (the caller commits); returns the refusals."""
    refused: list[Refused] = []
    for envelope in envelopes:
        try:
            restock = UnitsRestocked.model_validate(envelope.data)
        except ValidationError as exc:
            refused.append(Refused(envelope, error_text(exc, context="invalid units_restocked"), describe_error(exc)))
            continue
        facts = (await load_facts(uow, [restock.order_key])).get(restock.order_key)
        try:
            entry = plan_restock(facts, restock)
            if entry is None:
                continue
            async with uow.conn.begin_nested():  # a conflict found while posting undoes this restock only
                result = await post_entries(uow, [(entry, str(envelope.event_id))])
                if result.conflicts:
                    raise RestockRefused(f"restock refused (posting_conflict): {result.conflicts[0].posting_key}")
                await uow.publish(entry_posted_messages(result.posted, topics.entries))
        except RestockRefused as exc:
            rule = str(exc).partition("(")[2].partition(")")[0]
            refused.append(Refused(envelope, str(exc), {"rule": rule, "order_key": restock.order_key}))
    return refused
