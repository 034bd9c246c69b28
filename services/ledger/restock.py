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
unit's material is owed twice. An order the ledger never saw completed booked nothing: its restock is closed
without posting (:data:`NEVER_COMPLETED`). A restock that arrives before the order's distribution is a valid fact
waiting on ordering: it is parked, waiting for ``distribution`` (:data:`WAITING_FOR`), and posts in the transaction
that posts the distribution (a settlement, or an allocation by a person or by a filled backorder), like a refund
waiting for its settlement. One of a batch the order was not allocated (``batch_allocated``) or of more units than
it took from the batch (``quantity_fits``) is refused.

The posting use case runs it (:mod:`services.ledger.posting_plan` plans each restock after the batch's completions,
settlements and refunds of its order, with :func:`plan_restock`), so a parked restock is taken with the events
parked for its order whenever they are re-evaluated.
"""

from __future__ import annotations

from typing import Any

from services.contracts.orders import UnitsRestocked
from services.ledger.domain import accounts
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.journal import EntryKind, JournalEntry, LineBuilder, request_hash

__all__ = ["NEVER_COMPLETED", "WAITING_FOR", "RestockRefused", "plan_restock", "restock_key", "waits"]

WAITING_FOR = "distribution"
"""What a restock of an order not yet distributed is parked waiting for."""
NEVER_COMPLETED = "order never completed: nothing was booked, so there is no material to take back"
"""The recorded reason of a restock closed without posting."""

# The entry reverses distribution legs because of a return, like a refund's reversal per batch.
_KIND = EntryKind.REFUND_REVERSAL


class RestockRefused(LedgerDomainError):
    """A restock the ledger cannot book (the rule is named in the message)."""


def restock_key(order_key: str, restock_id: int) -> str:
    """The posting key of one restocked lot of an order."""
    return f"{order_key}:restock:{restock_id}"


def waits(order: OrderFacts) -> bool:
    """Whether a restock of ``order`` waits for its distribution (none posted yet)."""
    return not order.distributed


def plan_restock(order: OrderFacts | None, restock: UnitsRestocked) -> JournalEntry | None:
    """The entry that takes the material of ``restock``'s units back from the distributed ``order``'s supplier
    (see the module docstring); ``None`` when there is nothing to book (no completion, or no material cost). Pure;
    the caller parks a restock of an order that :func:`waits`.

    Raises:
        RestockRefused: naming the rule broken (``batch_allocated``, ``quantity_fits``, ``distributed_first`` when
            called for an order that still waits).
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
    if waits(order):
        raise RestockRefused(f"restock refused (distributed_first): order {key} is not distributed yet")
    amount = restock.quantity * int(batch["unit_material_cost"])
    if amount == 0:
        return None
    lapas = str(batch.get("lapas_id") or order.lapas_id)
    lines = LineBuilder()
    lines.debit(accounts.supplier_payable(lapas, str(batch["supplier_id"])), amount)
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
