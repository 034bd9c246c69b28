"""The ledger's hot functions as they were before the fast paths (verbatim logic, no caches): the references the
fast-path tests compare against, value for value and error message for error message."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from fractions import Fraction
from typing import Any

from services.ledger.domain import accounts
from services.ledger.domain.accounts import KINDS, OWNER_PATTERN, AccountType, Side, account_info
from services.ledger.domain.canonical import dump_canonical, sha256_hex
from services.ledger.domain.distribution import BatchPlan, DistributionPlan, Leg, distributable_base
from services.ledger.domain.errors import (
    AccountCodeError,
    AllocationError,
    DistributionError,
    EntryValidationError,
    NoPolicyError,
)
from services.ledger.domain.hashchain import FORMAT_TAG, LEGACY_FORMAT_TAG, LEGACY_SEGMENT, CommittedEntry
from services.ledger.domain.journal import EntryKind, JournalEntry
from services.ledger.domain.model import CompletionRequest, SettlementRequest, WorkMember
from services.ledger.domain.policy import ShareTarget, SplitPolicy, policy_hash

_HEX64 = re.compile(r"[0-9a-f]{64}")


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """What ``fn(*args)`` does: its value, or its error type and message (what the comparisons compare)."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", (type(exc), str(exc)))


def utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def to_canonical(value: object) -> object:
    cls = type(value)
    if cls is str or value is None or cls is bool:
        return value
    if cls is int:
        return value
    if isinstance(value, Enum):
        return to_canonical(value.value)
    if isinstance(value, int):
        return int(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if cls is list or cls is tuple or isinstance(value, list | tuple):
        return [to_canonical(item) for item in value]  # type: ignore[attr-defined]
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, float):
        raise TypeError(f"float {value!r} is not allowed in canonical data (use int rupiah or Fraction)")
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mapping key {key!r} is not a string")
            out[key] = to_canonical(item)
        return out
    raise TypeError(f"{type(value).__name__} is not allowed in canonical data")


def canonical_json(value: object) -> bytes:
    return dump_canonical(to_canonical(value))


def serialise_entry(committed: CommittedEntry) -> bytes:
    entry = committed.entry
    lines = sorted((line.account, line.side.value, line.amount) for line in entry.lines)
    legacy = committed.segment == LEGACY_SEGMENT
    head = [LEGACY_FORMAT_TAG, committed.sequence] if legacy else [FORMAT_TAG, committed.sequence, committed.segment]
    return canonical_json(
        [
            *head,
            entry.posting_key,
            entry.request_hash,
            entry.kind.value,
            utc_iso(entry.effective_at),
            utc_iso(committed.recorded_at),
            entry.policy_ref,
            entry.reverses,
            entry.order_key,
            entry.batch_id,
            committed.source_event,
            entry.memo,
            [list(line) for line in lines],
        ]
    )


def request_hash(kind: EntryKind, request: object, part: str | None = None) -> str:
    plain = {"kind": kind.value, "request": to_canonical(request), "part": to_canonical(part)}
    return sha256_hex(dump_canonical(plain))


def validate_entry(self: JournalEntry) -> None:
    where = f"entry {self.posting_key!r}"
    if not self.posting_key:
        raise EntryValidationError("entry has an empty posting key")
    if not _HEX64.fullmatch(self.request_hash):
        raise EntryValidationError(f"{where}: request hash must be 64 lower-case hex digits")
    if self.effective_at.utcoffset() is None:
        raise EntryValidationError(f"{where}: effective time has no time zone")
    if len(self.lines) < 2:
        raise EntryValidationError(f"{where}: needs at least two lines, has {len(self.lines)}")
    seen: set[str] = set()
    for line in self.lines:
        if isinstance(line.amount, bool) or not isinstance(line.amount, int) or line.amount <= 0:
            raise EntryValidationError(f"{where}: line {line.account} amount {line.amount!r} is not a positive int")
        if not isinstance(line.side, Side):
            raise EntryValidationError(f"{where}: line {line.account} side {line.side!r} is not D or C")
        try:
            account_info(line.account)
        except AccountCodeError as exc:
            raise EntryValidationError(f"{where}: {exc}") from None
        if line.account in seen:
            raise EntryValidationError(f"{where}: account {line.account} appears on two lines")
        seen.add(line.account)
    debits = sum(line.amount for line in self.lines if line.side is Side.DEBIT)
    credits = sum(line.amount for line in self.lines if line.side is Side.CREDIT)
    if debits != credits:
        raise EntryValidationError(f"{where}: unbalanced, debits {debits} != credits {credits}")


def _ratio(index: int, weight: object) -> tuple[int, int]:
    if isinstance(weight, bool) or not isinstance(weight, int | Fraction):
        raise AllocationError(f"weight {index} is {type(weight).__name__} {weight!r}; weights must be int or Fraction")
    if weight < 0:
        raise AllocationError(f"weight {index} is negative ({weight}); weights must be >= 0")
    if isinstance(weight, int):
        return int(weight), 1
    return weight.numerator, weight.denominator


def allocate(total: int, weights: Sequence[Fraction | int]) -> list[int]:
    if isinstance(total, bool) or not isinstance(total, int):
        raise AllocationError(f"total must be an int number of rupiah, got {type(total).__name__} {total!r}")
    ratios = [_ratio(i, w) for i, w in enumerate(weights)]
    if not ratios:
        raise AllocationError("cannot allocate over an empty list of weights")
    denominator = math.lcm(*(d for _, d in ratios))
    scaled = [n * (denominator // d) for n, d in ratios]
    scaled_sum = sum(scaled)
    if scaled_sum == 0:
        raise AllocationError(f"cannot allocate {total}: all {len(scaled)} weights are zero")
    if total < 0:
        return [-part for part in allocate(-total, scaled)]
    parts: list[int] = []
    remainders: list[int] = []
    for weight in scaled:
        floor, remainder = divmod(total * weight, scaled_sum)
        parts.append(floor)
        remainders.append(remainder)
    leftover = total - sum(parts)
    ranking = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
    for i in ranking[:leftover]:
        parts[i] += 1
    return parts


def select_policy(policies: Iterable[SplitPolicy], lapas_id: str, sku: str | None, at: datetime) -> SplitPolicy:
    if at.tzinfo is None or at.utcoffset() is None:
        raise NoPolicyError(f"cannot select a policy at naive time {at.isoformat()}")
    in_force = [p for p in policies if p.lapas_id == lapas_id and p.effective_from <= at]
    specific = [p for p in in_force if sku is not None and p.sku == sku]
    pool = specific or [p for p in in_force if p.sku is None]
    if not pool:
        raise NoPolicyError(
            f"no split policy in force for lapas {lapas_id!r}"
            + (f", sku {sku!r}" if sku else "")
            + f" at {utc_iso(at)}"
        )
    return max(pool, key=lambda p: (p.effective_from, p.version))


def account_code(account_type: AccountType, name: str, lapas: str | None, owner: str | None = None) -> str:
    kind = KINDS[(account_type, name)]

    def bad(what: str, value: object) -> str | None:
        if isinstance(value, str) and OWNER_PATTERN.fullmatch(value):
            return None
        article = "an" if what[0] in "aeiou" else "a"
        return f"needs {article} {what} id of letters, digits, '.', '_' or '-' (no ':'), got {value!r}"

    if kind.within_lapas:
        problem = bad("lapas", lapas)
    else:
        problem = None if lapas is None else "takes no lapas segment"
    if problem is None:
        if kind.owner is None:
            problem = None if owner is None else "takes no owner"
        else:
            problem = bad(kind.owner, owner)
    if problem:
        raise AccountCodeError(f"{account_type}:{name} {problem}")
    return ":".join(part for part in (account_type, name, lapas, owner) if part is not None)


def split_work_group(amount: int, work_group: Sequence[WorkMember]) -> list[tuple[str, int]]:
    parts = allocate(amount, [member.share for member in work_group])
    return [(member.inmate_id, part) for member, part in zip(work_group, parts, strict=True)]


def policy_split(policy: SplitPolicy, remainder: int) -> list[tuple[ShareTarget, int]]:
    parts = allocate(remainder, [rule.share for rule in policy.rules])
    return [(rule.target, part) for rule, part in zip(policy.rules, parts, strict=True)]


def plan_distribution(
    completion: CompletionRequest, settlement: SettlementRequest, policies: Sequence[SplitPolicy]
) -> DistributionPlan:
    completion.validate()  # one definition: the domain request checks itself
    settlement.validate()
    order = completion.order
    if settlement.order != order:
        raise DistributionError(f"settlement is for {settlement.order}, completion for {order}")
    base = distributable_base(completion.gross, settlement)
    weights = [a.quantity * a.unit_price for a in completion.allocations]
    proceeds = allocate(base, weights)
    batches: list[BatchPlan] = []
    for allocation, batch_proceeds in zip(completion.allocations, proceeds, strict=True):
        policy = select_policy(policies, order.lapas_id, allocation.sku, completion.completed_at)
        remainder = batch_proceeds - allocation.material_cost
        if remainder < 0:
            raise DistributionError(
                f"order {order.order_key}, batch {allocation.batch_id}: attributed proceeds {batch_proceeds} "
                f"do not cover the material cost {allocation.material_cost}; distribute by hand"
            )
        lapas = order.lapas_id
        legs = [
            Leg(
                accounts.material_cost_expense(lapas),
                accounts.supplier_payable(lapas, allocation.supplier_id),
                allocation.material_cost,
            )
        ]
        for target, amount in policy_split(policy, remainder):
            if target is ShareTarget.PNBP:
                legs.append(Leg(accounts.pnbp_share_expense(lapas), accounts.pnbp_payable(lapas), amount))
            elif target is ShareTarget.PRODUCTION_CAPITAL:
                legs.append(Leg(accounts.capital_allocation_expense(lapas), accounts.production_capital(lapas), amount))
            else:
                legs.extend(
                    Leg(accounts.inmate_premi_expense(lapas), accounts.inmate_savings(inmate), part)
                    for inmate, part in split_work_group(amount, allocation.work_group)
                )
        batches.append(
            BatchPlan(
                batch_id=allocation.batch_id,
                sku=allocation.sku,
                policy_ref=policy.ref,
                policy_hash=policy_hash(policy),
                proceeds=batch_proceeds,
                material_cost=allocation.material_cost,
                legs=tuple(leg for leg in legs if leg.amount > 0),
            )
        )
    return DistributionPlan(order=order, gross=completion.gross, base=base, batches=tuple(batches))
