"""What the ledger has posted per order: the payloads it posted from, kept to plan the order's later events.

Stored in ``ledger.order_facts``: the completion payload, the gross refunded so far, and — in the ``settlement``
column — the order's settlement state (:meth:`OrderFacts.state`): every settlement payload in arrival order,
how many of them the distribution covers, why the distribution waits (if it does) and the allocations a person
made later. A column written before settlements were plural holds one settlement payload; it reads as one
settlement, distributed. Settlements that name the marketplace's own id carry that id's running totals: the
column keeps each such payload as reported (``reported``, by settlement id) and the last one posted per
marketplace id (``latest``), while ``settlements`` holds what each of them added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from services.ledger.domain.tax import UNSET, TaxSetting, select_tax_setting


class _Versioned(Protocol):
    @property
    def ref(self) -> str: ...


PolicyT = TypeVar("PolicyT", bound=_Versioned)

NO_ALLOCATION = "no batch allocated (failed reservation, unknown listing or historical import)"
"""The hold reason of an order completed without allocations."""


@dataclass
class OrderFacts:
    """What the ledger has posted for one order.

    ``settlements``: the settlement payloads posted, in order. ``distributed``: how many of them the
    distribution entries cover (the rest, if any, wait in unallocated proceeds). ``hold``: why the distribution
    waits, or ``None``. ``allocations``: batches allocated after completion (replacing the completion's), or
    ``None``. ``policy_refs``: the policy versions the distribution was made under (later deltas and refunds are
    planned under the same ones). ``reported``: the payloads, as reported, of the settlements that name a
    marketplace settlement id (their entry in ``settlements`` is the difference to the previous totals);
    ``latest``: per marketplace settlement id, the settlement id whose totals were posted last.
    ``tax_ref``: the tax setting version the order's first settlement was posted under (later settlements and
    refunds keep it); ``tax``: that setting, chosen by :meth:`choose_tax` before a plan (not stored).
    ``is_new``/``changed`` say what a batch must write back."""

    order_key: str
    lapas_id: str
    completion: dict[str, Any]
    settlements: list[dict[str, Any]] = field(default_factory=list)
    refunded_gross: int = 0
    distributed: int = 0
    hold: str | None = None
    allocations: list[dict[str, Any]] | None = None
    policy_refs: list[str] | None = None
    refund_taken: dict[str, int] = field(default_factory=dict)
    reported: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)
    tax_ref: str | None = None
    tax: TaxSetting = field(default=UNSET, compare=False)
    is_new: bool = False
    changed: bool = False

    @classmethod
    def stored(
        cls, order_key: str, lapas_id: str, completion: dict[str, Any], state: dict[str, Any] | None, refunded: int
    ) -> OrderFacts:
        """The facts as a row stores them (``state``: the settlement column, see the module docstring)."""
        facts = cls(order_key, lapas_id, completion, refunded_gross=refunded)
        if state is None:
            if not completion.get("allocations"):
                facts.hold = NO_ALLOCATION
        elif "settlement_id" in state:  # one settlement, as stored before settlements were plural
            facts.settlements, facts.distributed = [state], 1
        else:
            facts.settlements = list(state.get("settlements", []))
            facts.distributed = int(state.get("distributed", 0))
            facts.hold = state.get("hold")
            facts.allocations = state.get("allocations")
            facts.policy_refs = state.get("policy_refs")
            facts.refund_taken = dict(state.get("refund_taken", {}))
            facts.reported = dict(state.get("reported", {}))
            facts.latest = dict(state.get("latest", {}))
            facts.tax_ref = state.get("tax_ref")
        return facts

    def state(self) -> dict[str, Any] | None:
        """The settlement column's value (``None`` while nothing but the completion is known and nothing waits)."""
        if not self.settlements and self.hold is None and self.allocations is None:
            return None
        state: dict[str, Any] = {
            "settlements": self.settlements,
            "distributed": self.distributed,
            "hold": self.hold,
            "allocations": self.allocations,
            "policy_refs": self.policy_refs,
        }
        if self.refund_taken:  # what line-aware refunds took back per batch, cumulative
            state["refund_taken"] = self.refund_taken
        if self.tax_ref is not None:
            state["tax_ref"] = self.tax_ref
        if self.latest:  # marketplace settlement ids seen: their payloads as reported, the last posted per id
            state["reported"], state["latest"] = self.reported, self.latest
        return state

    @property
    def settled(self) -> bool:
        """Whether at least one settlement was posted."""
        return bool(self.settlements)

    def reported_settlement(self, settlement_id: str) -> dict[str, Any] | None:
        """The payload of settlement ``settlement_id`` as it was reported, or ``None`` if it was never seen."""
        if settlement_id in self.reported:
            return self.reported[settlement_id]
        return next((s for s in self.settlements if s.get("settlement_id") == settlement_id), None)

    @property
    def allocated_at_completion(self) -> bool:
        """Whether the completion named its batches (its gross went to undistributed, not unallocated)."""
        return bool(self.completion.get("allocations"))

    def pinned(self, policies: Sequence[PolicyT]) -> list[PolicyT]:
        """``policies`` narrowed to the versions the order was distributed under (all before its first
        distribution, or when none of them is among ``policies``)."""
        if not self.policy_refs:  # nothing pinned yet: every version (what the narrowing below would give)
            return list(policies)
        refs = set(self.policy_refs)
        kept = [p for p in policies if p.ref in refs]
        return kept or list(policies)

    def choose_tax(self, settings: Sequence[TaxSetting], lapas_id: str, completed_at: datetime) -> TaxSetting:
        """Set :attr:`tax`: the version pinned by :attr:`tax_ref` when it is among ``settings``, else the one of
        ``lapas_id`` in force at ``completed_at`` (the order's completion) — and pin it once the order settles. An
        order settled with nothing pinned was settled under no setting (one is pinned at the first settlement): it
        stays so, or its later settlements would split a PPN its first one never took off revenue."""
        if self.tax_ref is None and self.settled:
            self.tax = UNSET
            return self.tax
        pinned = next((s for s in settings if s.ref == self.tax_ref), None) if self.tax_ref else None
        self.tax = pinned or select_tax_setting(settings, lapas_id, completed_at)
        return self.tax

    def pin_tax(self) -> None:
        """Record :attr:`tax` as the order's tax setting (at its first settlement; unset is not pinned)."""
        if self.tax_ref is None and self.tax is not UNSET:
            self.tax_ref, self.changed = self.tax.ref, True

    def effective_completion(self) -> dict[str, Any]:
        """The completion payload with the allocations a person made later (and their lapas when the
        completion named none)."""
        if self.allocations is None:
            return self.completion
        lapas = self.completion.get("lapas_id") or (self.allocations[0]["lapas_id"] if self.allocations else None)
        return {**self.completion, "allocations": self.allocations, "lapas_id": lapas}
