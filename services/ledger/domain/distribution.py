"""Distribution plans: who gets which rupiah of an order's settled proceeds, and how refunds take it back.

Base. The distributable base of an order is ``min(net_payout, gross_recognised − fees − PPh 22)``: only money
that was both expected and actually received is split; under a lapas' tax setting less the output PPN and plus
the input PPN and a PPh 22 to be claimed back (:mod:`services.ledger.domain.tax`). A shortfall (net below
expectation) is split as it is and stays visible in suspense; an excess (net above expectation) is *not* split
until someone reconciles the suspense.

Plan. The base is attributed to the order's batches in proportion to quantity × unit price with
:func:`allocate`. For each batch, with the policy in force (for the batch's SKU, at completion):

* supplier material cost (unit material cost × quantity) is owed to the supplier; if the attributed proceeds
  do not cover it the plan is refused (:class:`DistributionError`) so a person decides;
* the policy's split base is the proceeds minus the material cost (``base: profit``) or the proceeds
  (``base: revenue``); its fixed deductions come off it, each to its account (refused when they exceed it);
* what is left is split by the policy's exact shares (rule order breaks ties); with a revenue base the
  material cost is paid out of the production capital share, and a capital share that does not cover it is
  refused like proceeds below the material cost;
* the inmate premi part is split over the batch's work group by work shares (work-group order breaks ties).

Either way a batch's legs sum exactly to its proceeds, and the order's to the base.

Every split is a *leg*: ``(debit expense account, credit target account, amount)``.

Refunds. With ``R`` the cumulative gross refunded, the cumulative base to take back is
``allocate(R, [base, gross − base])[0]`` (so a full refund takes back exactly the base), and each leg's
cumulative reversal is ``allocate(that, leg amounts)``. A refund posts, per leg, the cumulative reversal
after it minus the cumulative reversal before it, so rounding never drifts, no leg is ever reversed by more
than it gave, and a full refund reverses every leg exactly. Largest remainder is not monotone (see
:mod:`services.ledger.domain.allocation`): a later partial refund can hand one rupiah back to a leg, which
posts as a line on the original side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.ledger.domain import accounts
from services.ledger.domain.allocation import allocate
from services.ledger.domain.errors import DistributionError, RefundError
from services.ledger.domain.model import (
    BatchAllocation,
    CompletionRequest,
    OrderRef,
    SettlementRequest,
    WorkMember,
)
from services.ledger.domain.policy import ShareTarget, SplitBase, SplitPolicy, policy_hash, select_policy
from services.ledger.domain.tax import UNSET, TaxSetting, base_adjustment

__all__ = [
    "BatchPlan",
    "DistributionPlan",
    "Leg",
    "cumulative_reversal",
    "distributable_base",
    "distribution_of",
    "plan_distribution",
    "reversal_base",
    "split_work_group",
]


@dataclass(frozen=True, slots=True)
class Leg:
    """One flow of a distribution: debit ``debit`` (an expense), credit ``credit`` (who receives it)."""

    debit: str
    credit: str
    amount: int


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """The distribution of one batch's attributed proceeds under one policy version."""

    batch_id: str
    sku: str
    policy_ref: str
    policy_hash: str
    proceeds: int
    material_cost: int
    legs: tuple[Leg, ...]


@dataclass(frozen=True, slots=True)
class DistributionPlan:
    """The whole distribution of one order: gross recognised, base split, and per-batch legs."""

    order: OrderRef
    gross: int
    base: int
    batches: tuple[BatchPlan, ...]

    def legs(self) -> list[tuple[BatchPlan, Leg]]:
        """Every leg with its batch, in plan order (batch order, then leg order)."""
        return [(batch, leg) for batch in self.batches for leg in batch.legs]


_PNBP, _PRODUCTION_CAPITAL = ShareTarget.PNBP, ShareTarget.PRODUCTION_CAPITAL
_REVENUE = SplitBase.REVENUE


def distributable_base(gross_recognised: int, settlement: SettlementRequest, tax: TaxSetting = UNSET) -> int:
    """``min(net_payout, gross_recognised − fees − PPh 22)`` and what the tax treatment changes in it (output
    PPN off, input PPN on, a reclaimable PPh 22 on: :func:`~services.ledger.domain.tax.base_adjustment`, on the
    gross the settlements recognised); raises if that is negative."""
    expected = gross_recognised - settlement.fee_total - settlement.pph22_withheld
    recognised = min(max(settlement.gross, 0), gross_recognised)
    adjustment = base_adjustment(tax, recognised, settlement.fees, settlement.pph22_withheld)
    base = min(settlement.net_payout, expected) + adjustment
    if base < 0:
        raise DistributionError(
            f"order {settlement.order.order_key}: fees {settlement.fee_total} and PPh 22 "
            f"{settlement.pph22_withheld} exceed the recognised gross {gross_recognised}"
        )
    return base


def split_work_group(amount: int, work_group: Sequence[WorkMember]) -> list[tuple[str, int]]:
    """Divide ``amount`` over a work group by work shares (ties to the earlier member)."""
    parts = allocate(amount, [member.share for member in work_group])
    return [(member.inmate_id, part) for member, part in zip(work_group, parts, strict=True)]


def plan_distribution(
    completion: CompletionRequest,
    settlement: SettlementRequest,
    policies: Sequence[SplitPolicy],
    tax: TaxSetting = UNSET,
) -> DistributionPlan:
    """Plan the split of a settled order (see the module docstring).

    Policies are selected per batch SKU at ``completion.completed_at`` from ``policies``; pass the policy
    versions recorded on the original distribution when re-planning for a refund; ``tax``: the lapas' tax setting
    (the order's, pinned at its first settlement).

    Raises:
        RequestError: a malformed request; NoPolicyError: no policy in force;
        DistributionError: order mismatch, proceeds below a batch's material cost, deductions above the
            policy's base, or (revenue base) a capital share below the material cost.
    """
    completion.validate()
    settlement.validate()
    return distribution_of(completion, settlement, policies, tax)


def distribution_of(
    completion: CompletionRequest,
    settlement: SettlementRequest,
    policies: Sequence[SplitPolicy],
    tax: TaxSetting = UNSET,
) -> DistributionPlan:
    """:func:`plan_distribution` of requests validated already (the posting path validates each request once:
    a completion where it is parsed, a cumulative settlement where it is summed); raises as it does but for
    ``RequestError``."""
    order = completion.order
    if settlement.order != order:
        raise DistributionError(f"settlement is for {settlement.order}, completion for {order}")
    base = distributable_base(completion.gross, settlement, tax)
    weights = [a.quantity * a.unit_price for a in completion.allocations]
    proceeds = allocate(base, weights)
    lapas = order.lapas_id
    batches: list[BatchPlan] = []
    for allocation, batch_proceeds in zip(completion.allocations, proceeds, strict=True):
        policy = select_policy(policies, lapas, allocation.sku, completion.completed_at)
        legs = _batch_legs(order.order_key, lapas, allocation, batch_proceeds, policy)
        batches.append(
            BatchPlan(
                batch_id=allocation.batch_id,
                sku=allocation.sku,
                policy_ref=policy.ref,
                policy_hash=policy_hash(policy),
                proceeds=batch_proceeds,
                material_cost=allocation.material_cost,
                legs=tuple(legs),
            )
        )
    return DistributionPlan(order=order, gross=completion.gross, base=base, batches=tuple(batches))


def _batch_legs(
    order_key: str, lapas: str, allocation: BatchAllocation, proceeds: int, policy: SplitPolicy
) -> list[Leg]:
    """The legs of one batch's ``proceeds`` under ``policy``: material cost, deductions, shares (see the module
    docstring); legs of 0 rupiah are not built. Raises :class:`DistributionError` when the proceeds cannot pay
    what comes before the shares."""
    material_cost = allocation.material_cost
    where = f"order {order_key}, batch {allocation.batch_id}"
    if proceeds < material_cost:
        raise DistributionError(
            f"{where}: attributed proceeds {proceeds} do not cover the material cost {material_cost}; "
            "distribute by hand"
        )
    revenue_base = policy.base is _REVENUE
    base = proceeds if revenue_base else proceeds - material_cost
    deducted = policy.deduct(base, allocation.quantity)
    rest = base - sum(deducted)
    if rest < 0:
        raise DistributionError(
            f"{where}: the deductions {sum(deducted)} of policy {policy.ref} exceed its {policy.base} base {base}; "
            "distribute by hand"
        )
    # Legs of 0 rupiah are not built (no account code can be refused: the completion's ids were validated).
    legs: list[Leg] = []
    if material_cost > 0:
        legs.append(
            Leg(
                accounts.material_cost_expense(lapas),
                accounts.supplier_payable(lapas, allocation.supplier_id),
                material_cost,
            )
        )
    deduction_expense = accounts.split_deduction_expense(lapas) if deducted else ""
    legs.extend(
        Leg(deduction_expense, accounts.in_lapas(deduction.account, lapas), amount)
        for deduction, amount in zip(policy.deductions, deducted, strict=True)
        if amount > 0
    )
    for target, share in policy.split(rest):
        if target is _PNBP:
            if share > 0:
                legs.append(Leg(accounts.pnbp_share_expense(lapas), accounts.pnbp_payable(lapas), share))
        elif target is _PRODUCTION_CAPITAL:
            amount = share - material_cost if revenue_base else share
            if amount < 0:
                raise DistributionError(
                    f"{where}: the production capital share {share} of revenue-base policy {policy.ref} does not "
                    f"cover the material cost {material_cost}; distribute by hand"
                )
            if amount > 0:
                legs.append(Leg(accounts.capital_allocation_expense(lapas), accounts.production_capital(lapas), amount))
        else:
            premi = accounts.inmate_premi_expense(lapas)
            for inmate, part in split_work_group(share, allocation.work_group):
                if part > 0:
                    legs.append(Leg(premi, accounts.inmate_savings(inmate), part))
    return legs


def reversal_base(plan: DistributionPlan, refunded_gross: int) -> int:
    """Cumulative part of the base to take back once ``refunded_gross`` (cumulative) has been refunded."""
    if not 0 <= refunded_gross <= plan.gross:
        raise RefundError(f"order {plan.order.order_key}: cumulative refunds {refunded_gross} outside 0..{plan.gross}")
    return allocate(refunded_gross, [plan.base, plan.gross - plan.base])[0]


def cumulative_reversal(plan: DistributionPlan, refunded_gross: int) -> list[int]:
    """Per leg (in :meth:`DistributionPlan.legs` order), what ``refunded_gross`` in total takes back.

    Each value is between 0 and the leg's amount; at ``refunded_gross == plan.gross`` it equals the leg.
    """
    legs = plan.legs()
    take_back = reversal_base(plan, refunded_gross)
    if not legs:
        return []
    return allocate(take_back, [leg.amount for _, leg in legs])
