"""Split policies: how the settled proceeds of a sale are divided (data, versioned, effective-dated).

A policy applies to one lapas, optionally to one product (SKU), from ``effective_from`` on. Dividing the
proceeds of one production batch goes in two stages:

1. **The base.** Marketplace fees and withheld PPh 22 never reach the lapas (they come off in the settlement),
   so a batch's *proceeds* are its part of what was settled. The supplier's material cost (batch unit material
   cost × quantity) is always owed to the supplier. ``base: profit`` (the default) splits the proceeds minus the
   material cost: every share bears the material cost in proportion. ``base: revenue`` splits the proceeds
   themselves (published "sales" splits): PNBP and premi are their share of the sale, and the material cost is
   paid out of the ``production_capital`` share (the workshop buys its material from its capital), so such a
   policy must have a ``production_capital`` rule; when that share does not cover the material cost the
   distribution cannot be made (:mod:`services.ledger.domain.distribution` holds it in unallocated proceeds).
2. **Fixed deductions** (optional, in file order): named amounts taken off the base before the split, each
   credited to a named account (debit ``expense:split_deduction:<lapas>``): ``rate`` — an exact fraction of the
   base (the rates together below 1; rounded with the base's rest by :func:`allocate`, ties to the earlier
   deduction) — or ``amount_per_unit`` — whole rupiah per unit sold (× the batch's quantity). The account is a
   ``liability:deduction_payable:<payee>`` (owed to a named payee, e.g. a cooperative), a
   ``liability:supplier_payable:<supplier>`` (packaging, a service), or the policy's own lapas'
   ``liability:pnbp_payable`` or ``equity:production_capital``. A payee or supplier named without a lapas is the
   policy's own lapas' (:func:`~services.ledger.domain.accounts.in_lapas`: the distribution credits
   ``liability:deduction_payable:<lapas>:<payee>``); one naming another lapas is refused.
3. **Fractional shares of what is left**, in the rule order of the policy: ``pnbp`` (the state, via the
   lapas), ``inmate_premi`` (divided over the batch's work group by work shares) and ``production_capital``.
   Shares are exact fractions written as strings (``"50%"``, ``"15/100"``, ``"0.35"``), never floats; they
   are non-negative and sum to exactly 1. Rule order is the tie-break order of :func:`allocate`.

Whatever the base, the parts of a batch (material cost, deductions, shares) sum exactly to its proceeds, so
revenue − fees − PPh 22 − distribution leaves nothing that nobody owns.

File format (YAML or JSON; parsed by :mod:`services.ledger.domain.policy_file`)::

    policies:
      - policy_id: cipinang-standard     # one id per lineage of versions (same lapas and sku)
        version: 1                       # integer >= 1; later versions have later effective_from
        lapas_id: cipinang
        sku: CPN-GLV-001                 # optional: a product-specific override
        effective_from: "2026-01-01T00:00:00+07:00"   # must carry a time zone
        description: free text           # optional, not part of the policy hash
        rules:
          - {target: pnbp, share: "50%"}
          - {target: inmate_premi, share: "15/100"}
          - {target: production_capital, share: "0.35"}
        claw_back_premi: never           # optional: never (default) | from_savings | receivable
        base: profit                     # optional: profit (default) | revenue
        deductions:                      # optional, taken off the base before the split
          - {name: koperasi, rate: "2%", account: "liability:deduction_payable:koperasi-cipinang"}
          - {name: packaging, amount_per_unit: 1500, account: "liability:supplier_payable:sup-kemas"}

``claw_back_premi`` says what a refund does with the premi the refunded sale paid to inmates (see
``docs/accounting.md``, Refunds): ``never`` — the inmate keeps it and production capital absorbs it;
``from_savings`` — it is taken back from the inmate's savings up to their balance, production capital absorbs
the rest; ``receivable`` — taken back from savings, the rest booked as a receivable on the inmate.

Selection (:func:`select_policy`): a product-specific policy beats the lapas-wide one; within the winning
scope the latest ``effective_from`` that is not after the moment wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import TypeVar

from services.ledger.domain import accounts
from services.ledger.domain.allocation import allocate, scale_weights
from services.ledger.domain.canonical import canonical_json, sha256_hex, utc_iso
from services.ledger.domain.errors import NoPolicyError, PolicyError

__all__ = [
    "POLICY_ID_PATTERN",
    "ClawBack",
    "Deduction",
    "ShareRule",
    "ShareTarget",
    "SplitBase",
    "SplitPolicy",
    "deduction_problems",
    "policy_hash",
    "rule_problems",
    "select_policy",
]

POLICY_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_T = TypeVar("_T")


class ShareTarget(StrEnum):
    """Who receives a fractional share of the remainder."""

    PNBP = "pnbp"
    INMATE_PREMI = "inmate_premi"
    PRODUCTION_CAPITAL = "production_capital"


class SplitBase(StrEnum):
    """What the shares of a policy divide: the proceeds minus the material cost, or the proceeds."""

    PROFIT = "profit"
    REVENUE = "revenue"


class ClawBack(StrEnum):
    """What a refund does with premi already credited to inmates' savings."""

    NEVER = "never"
    FROM_SAVINGS = "from_savings"
    RECEIVABLE = "receivable"


@dataclass(frozen=True, slots=True)
class ShareRule:
    """One fractional share of the remainder (after the fixed deductions)."""

    target: ShareTarget
    share: Fraction


@dataclass(frozen=True, slots=True)
class Deduction:
    """A fixed deduction taken off the base before the split: ``rate`` of the base or ``per_unit`` rupiah per
    unit sold (exactly one of them), credited to ``account``."""

    name: str
    account: str
    rate: Fraction | None = None
    per_unit: int | None = None


#: Account kinds a deduction may be credited to; the lapas-owned ones only for the policy's own lapas.
DEDUCTION_KINDS = {"deduction_payable", "supplier_payable", "pnbp_payable", "production_capital"}
_LAPAS_OWNED = {"pnbp_payable", "production_capital"}
DEDUCTION_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")


@dataclass(frozen=True, slots=True)
class SplitPolicy:
    """A validated split policy version; construct through :func:`parse_policies` for good messages."""

    policy_id: str
    version: int
    lapas_id: str
    sku: str | None
    effective_from: datetime
    rules: tuple[ShareRule, ...]
    description: str = field(default="", compare=False)
    claw_back_premi: ClawBack = ClawBack.NEVER
    base: SplitBase = SplitBase.PROFIT
    deductions: tuple[Deduction, ...] = ()

    def __post_init__(self) -> None:
        problems = rule_problems(self.rules, self.base) + deduction_problems(self.deductions, self.lapas_id)
        if self.effective_from.tzinfo is None or self.effective_from.utcoffset() is None:
            problems.append("effective_from has no time zone")
        if problems:
            raise PolicyError(f"policy {self.ref}: " + "; ".join(problems))

    @property
    def ref(self) -> str:
        """``policy_id@vN``: the version recorded on every posting made with this policy."""
        return f"{self.policy_id}@v{self.version}"

    def split(self, remainder: int) -> list[tuple[ShareTarget, int]]:
        """Divide ``remainder`` (proceeds after the fixed deductions) over the rules, in rule order."""
        shares: list[int] = _per_policy(_SHARES, self, _integer_shares)
        parts = allocate(remainder, shares)
        return [(rule.target, part) for rule, part in zip(self.rules, parts, strict=True)]

    def deduct(self, base: int, quantity: int) -> list[int]:
        """What each deduction takes off ``base`` (whole rupiah, in deduction order) for ``quantity`` units.

        Rates are of ``base``, divided with its rest by :func:`allocate` (largest remainder, ties to the earlier
        deduction), so they never take more than the base; per-unit amounts are exact and may exceed it (the
        caller refuses a distribution whose deductions exceed its base)."""
        if not self.deductions:
            return []
        rates = [d.rate for d in self.deductions if d.rate is not None]
        parts = iter(allocate(base, [*rates, 1 - sum(rates, Fraction(0))]) if rates else [])
        return [next(parts) if d.rate is not None else (d.per_unit or 0) * quantity for d in self.deductions]


def _per_policy(cache: dict[int, tuple[SplitPolicy, _T]], policy: SplitPolicy, make: Callable[[SplitPolicy], _T]) -> _T:
    """``make(policy)`` once per policy object: by identity, holding the policy (frozen, its rules a tuple of
    frozen rules, so nothing it depends on changes); hashing a policy would hash every field and Fraction."""
    hit = cache.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    value = make(policy)
    if type(policy.rules) is tuple:
        if len(cache) >= 1024:
            cache.clear()
        cache[id(policy)] = (policy, value)
    return value


def _integer_shares(policy: SplitPolicy) -> list[int]:
    return scale_weights([rule.share for rule in policy.rules])


_SHARES: dict[int, tuple[SplitPolicy, list[int]]] = {}
_HASHES: dict[int, tuple[SplitPolicy, str]] = {}


def rule_problems(rules: Sequence[ShareRule], base: SplitBase = SplitBase.PROFIT) -> list[str]:
    """What is wrong with ``rules`` (empty: nothing): at least one, none negative or repeated, summing to 1; with a
    revenue ``base``, one of them ``production_capital`` (it pays the material cost)."""
    problems: list[str] = []
    if not rules:
        return ["rules: at least one share is required"]
    if base is SplitBase.REVENUE and all(rule.target is not ShareTarget.PRODUCTION_CAPITAL for rule in rules):
        problems.append(
            "base: a revenue base needs a production_capital rule (the material cost is paid out of that share)"
        )
    seen: set[ShareTarget] = set()
    for rule in rules:
        if rule.share < 0:
            problems.append(f"rules: share of {rule.target} is negative ({rule.share})")
        if rule.target in seen:
            problems.append(f"rules: target {rule.target} appears twice")
        seen.add(rule.target)
    total = sum((rule.share for rule in rules), Fraction(0))
    if total != 1:
        problems.append(f"rules: shares sum to {total} ({float(total):.6%}), not exactly 1")
    return problems


def deduction_problems(deductions: Sequence[Deduction], lapas_id: str) -> list[str]:
    """What is wrong with ``deductions`` (empty: nothing), each problem prefixed with ``deductions[i].<field>``:
    names unique and well formed, exactly one of a rate in (0, 1) or a whole per-unit amount >= 1, rates together
    below 1, and an account of a kind in :data:`DEDUCTION_KINDS` (the lapas-owned ones of ``lapas_id``)."""
    problems: list[str] = []
    names: set[str] = set()
    for i, d in enumerate(deductions):
        where = f"deductions[{i}]"
        if not DEDUCTION_NAME_PATTERN.fullmatch(d.name):
            problems.append(f"{where}.name: {d.name!r} must match {DEDUCTION_NAME_PATTERN.pattern}")
        elif d.name in names:
            problems.append(f"{where}.name: {d.name!r} appears twice")
        names.add(d.name)
        if (d.rate is None) == (d.per_unit is None):
            problems.append(f"{where}: give exactly one of rate or amount_per_unit")
        elif d.rate is not None and not 0 < d.rate < 1:
            problems.append(f"{where}.rate: {d.rate} is not between 0 and 1 (exclusive)")
        elif d.per_unit is not None and (isinstance(d.per_unit, bool) or d.per_unit < 1):
            problems.append(f"{where}.amount_per_unit: {d.per_unit!r} is not a whole rupiah amount >= 1")
        problems.extend(f"{where}.account: {p}" for p in _account_problems(d.account, lapas_id))
    rates = sum((d.rate for d in deductions if d.rate is not None), Fraction(0))
    if rates >= 1:
        problems.append(f"deductions: the rates sum to {rates} ({float(rates):.6%}); they must stay below 1")
    return problems


def _account_problems(code: str, lapas_id: str) -> list[str]:
    try:
        info = accounts.account_info(code)
    except ValueError as exc:
        return [str(exc)]
    allowed = ", ".join(sorted(DEDUCTION_KINDS))
    if info.kind.name not in DEDUCTION_KINDS:
        return [f"{code!r} is not a deduction account (kinds: {allowed})"]
    if (info.kind.name in _LAPAS_OWNED and info.owner != lapas_id) or info.lapas not in (None, lapas_id):
        return [f"{code!r} belongs to another lapas than {lapas_id!r}"]
    return []


def policy_hash(policy: SplitPolicy) -> str:
    """SHA-256 (hex) of the canonical JSON of the policy's meaning (description excluded)."""
    return _per_policy(_HASHES, policy, _policy_hash)


# Also by value: policies are parsed again from the database whenever a version is added.
@lru_cache(maxsize=1024)
def _policy_hash(policy: SplitPolicy) -> str:
    return sha256_hex(
        canonical_json(
            {
                "policy_id": policy.policy_id,
                "version": policy.version,
                "lapas_id": policy.lapas_id,
                "sku": policy.sku,
                "effective_from": utc_iso(policy.effective_from),
                "rules": [{"target": r.target.value, "share": r.share} for r in policy.rules],
                # Only when not the default, so the versions loaded before the field keep their hash.
                **(
                    {"claw_back_premi": policy.claw_back_premi.value}
                    if policy.claw_back_premi is not ClawBack.NEVER
                    else {}
                ),
                **({"base": policy.base.value} if policy.base is not SplitBase.PROFIT else {}),
                **({"deductions": [_deduction_body(d) for d in policy.deductions]} if policy.deductions else {}),
            }
        )
    )


def _deduction_body(d: Deduction) -> dict[str, object]:
    amount: dict[str, object] = {"rate": d.rate} if d.rate is not None else {"amount_per_unit": d.per_unit}
    return {"name": d.name, "account": d.account, **amount}


def select_policy(policies: Iterable[SplitPolicy], lapas_id: str, sku: str | None, at: datetime) -> SplitPolicy:
    """The policy in force for ``lapas_id`` / ``sku`` at ``at`` (aware datetime).

    A product-specific policy (``sku`` equal) beats a lapas-wide one (``sku`` None); within the scope the
    latest ``effective_from <= at`` wins (then the highest version). Raises :class:`NoPolicyError`.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise NoPolicyError(f"cannot select a policy at naive time {at.isoformat()}")
    # One pass keeping the first maximum of each scope (what max() over the scope's list would return).
    specific: SplitPolicy | None = None
    general: SplitPolicy | None = None
    for p in policies:
        if p.lapas_id != lapas_id or not p.effective_from <= at:
            continue
        if sku is not None and p.sku == sku:
            if specific is None or _later(p, specific):
                specific = p
        elif p.sku is None and specific is None and (general is None or _later(p, general)):
            general = p
    chosen = specific or general
    if chosen is None:
        raise NoPolicyError(
            f"no split policy in force for lapas {lapas_id!r}"
            + (f", sku {sku!r}" if sku else "")
            + f" at {utc_iso(at)}"
        )
    return chosen


def _later(p: SplitPolicy, than: SplitPolicy) -> bool:
    return (p.effective_from, p.version) > (than.effective_from, than.version)
