"""Split policies: how the settled proceeds of a sale are divided (data, versioned, effective-dated).

A policy applies to one lapas, optionally to one product (SKU), from ``effective_from`` on. Dividing the
proceeds of one production batch goes in two stages:

1. **Fixed deductions** (the same for every policy, so not written in the file): marketplace fees and withheld
   PPh 22 never reach the lapas (they come off in the settlement), then the supplier's material cost
   (batch unit material cost × quantity) is owed to the supplier.
2. **Fractional shares of the remainder**, in the rule order of the policy: ``pnbp`` (the state, via the
   lapas), ``inmate_premi`` (divided over the batch's work group by work shares) and ``production_capital``.
   Shares are exact fractions written as strings (``"50%"``, ``"15/100"``, ``"0.35"``), never floats; they
   are non-negative and sum to exactly 1. Rule order is the tie-break order of :func:`allocate`.

File format (YAML or JSON)::

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

Selection (:func:`select_policy`): a product-specific policy beats the lapas-wide one; within the winning
scope the latest ``effective_from`` that is not after the moment wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import TypeVar

from services.ledger.domain.accounts import OWNER_PATTERN
from services.ledger.domain.allocation import allocate, scale_weights
from services.ledger.domain.canonical import canonical_json, sha256_hex, utc_iso
from services.ledger.domain.errors import NoPolicyError, PolicyError

__all__ = [
    "ShareRule",
    "ShareTarget",
    "SplitPolicy",
    "parse_policies",
    "parse_share",
    "policy_hash",
    "select_policy",
]

POLICY_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_RATIO = re.compile(r"(\d+)\s*/\s*(\d+)")
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_POLICY_KEYS = ("policy_id", "version", "lapas_id", "sku", "effective_from", "description", "rules")
_RULE_KEYS = ("target", "share")
_T = TypeVar("_T")


class ShareTarget(StrEnum):
    """Who receives a fractional share of the remainder."""

    PNBP = "pnbp"
    INMATE_PREMI = "inmate_premi"
    PRODUCTION_CAPITAL = "production_capital"


@dataclass(frozen=True, slots=True)
class ShareRule:
    """One fractional share of the remainder (after the fixed deductions)."""

    target: ShareTarget
    share: Fraction


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

    def __post_init__(self) -> None:
        problems = _rule_problems(self.rules)
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


def _rule_problems(rules: Sequence[ShareRule]) -> list[str]:
    problems: list[str] = []
    if not rules:
        return ["rules: at least one share is required"]
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


def parse_share(value: object) -> Fraction:
    """Parse an exact share: ``"50%"``, ``"12.5 %"``, ``"15/100"``, ``"0.35"``, ``0`` or ``1``.

    Floats are refused (``0.35`` unquoted in YAML is a float: quote it). Raises ``ValueError``.
    """
    if isinstance(value, bool | float):
        raise ValueError(f"{value!r} is a {type(value).__name__}; write the share as a quoted string like '35%'")
    if isinstance(value, int):
        if value not in (0, 1):
            raise ValueError(f"integer share {value} is not 0 or 1; write a fraction like '35%' or '7/20'")
        return Fraction(value)
    if not isinstance(value, str):
        raise ValueError(f"share must be a string like '35%', '7/20' or '0.35', got {type(value).__name__}")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"share {value!r} is negative")
    if m := _PERCENT.fullmatch(text):
        return Fraction(m.group(1)) / 100
    if m := _RATIO.fullmatch(text):
        if int(m.group(2)) == 0:
            raise ValueError(f"share {value!r} divides by zero")
        return Fraction(int(m.group(1)), int(m.group(2)))
    if _DECIMAL.fullmatch(text):
        return Fraction(text)
    raise ValueError(f"share {value!r} is not a percentage ('35%'), a ratio ('7/20') or a decimal ('0.35')")


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
            }
        )
    )


class _Collector:
    """Collects every problem of a file so one run reports them all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.errors.append(f"{self.source}: {where}: {message}")


def _where(index: int, raw: Mapping[object, object], field_name: str) -> str:
    pid = raw.get("policy_id")
    ident = f" (id {pid!r})" if isinstance(pid, str) else ""
    return f"policy[{index}]{ident}: field {field_name!r}"


def _parse_one(index: int, raw: object, out: _Collector) -> SplitPolicy | None:
    if not isinstance(raw, Mapping):
        out.add(f"policy[{index}]", f"must be a mapping, got {type(raw).__name__}")
        return None
    before = len(out.errors)
    for key in raw:
        if key not in _POLICY_KEYS:
            out.add(_where(index, raw, str(key)), f"unknown field (allowed: {', '.join(_POLICY_KEYS)})")

    def text(name: str, pattern: re.Pattern[str], required: bool = True) -> str | None:
        value = raw.get(name)
        if value is None:
            if required:
                out.add(_where(index, raw, name), "is required")
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            out.add(_where(index, raw, name), f"{value!r} must match {pattern.pattern}")
            return None
        return value

    policy_id = text("policy_id", POLICY_ID_PATTERN)
    lapas_id = text("lapas_id", OWNER_PATTERN)
    sku = text("sku", OWNER_PATTERN, required=False)
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        out.add(_where(index, raw, "version"), f"must be an integer >= 1, got {version!r}")
    effective, problem = _parse_time(raw.get("effective_from"))
    if problem:
        out.add(_where(index, raw, "effective_from"), problem)
    description = raw.get("description", "")
    if not isinstance(description, str):
        out.add(_where(index, raw, "description"), "must be a string")
    rules = _parse_rules(index, raw, out)

    if len(out.errors) > before or None in (policy_id, lapas_id, effective) or rules is None:
        return None
    assert isinstance(version, int) and isinstance(effective, datetime)  # narrowed by the checks above
    problems = _rule_problems(rules)
    for problem in problems:
        out.add(_where(index, raw, "rules"), problem.removeprefix("rules: "))
    if problems:
        return None
    return SplitPolicy(
        policy_id=str(policy_id),
        version=version,
        lapas_id=str(lapas_id),
        sku=sku,
        effective_from=effective,
        rules=tuple(rules),
        description=str(description),
    )


def _parse_time(value: object) -> tuple[datetime | None, str | None]:
    example = "e.g. '2026-01-01T00:00:00+07:00'"
    if value is None:
        return None, f"is required ({example})"
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None, f"{value!r} is not an ISO 8601 date-time ({example})"
    if not isinstance(moment, datetime):
        return None, f"{value!r} is not a date-time ({example})"
    if moment.utcoffset() is None:
        return None, f"{value!r} has no time zone ({example})"
    return moment, None


def _parse_rules(index: int, raw: Mapping[object, object], out: _Collector) -> list[ShareRule] | None:
    value = raw.get("rules")
    if not isinstance(value, list) or not value:
        out.add(_where(index, raw, "rules"), f"must be a non-empty list of {{target, share}}, got {value!r}")
        return None
    rules: list[ShareRule] = []
    ok = True
    for j, item in enumerate(value):
        name = f"rules[{j}]"
        if not isinstance(item, Mapping):
            out.add(_where(index, raw, name), f"must be a mapping {{target, share}}, got {item!r}")
            ok = False
            continue
        for key in item:
            if key not in _RULE_KEYS:
                out.add(_where(index, raw, f"{name}.{key}"), "unknown field (allowed: target, share)")
                ok = False
        raw_target = item.get("target")
        if raw_target not in {t.value for t in ShareTarget}:
            allowed = ", ".join(t.value for t in ShareTarget)
            out.add(_where(index, raw, f"{name}.target"), f"{raw_target!r} is not one of {allowed}")
            ok = False
            continue
        target = ShareTarget(str(raw_target))
        try:
            share = parse_share(item.get("share"))
        except ValueError as exc:
            out.add(_where(index, raw, f"{name}.share"), str(exc))
            ok = False
            continue
        rules.append(ShareRule(target=target, share=share))
    return rules if ok else None


def _cross_check(policies: list[tuple[int, SplitPolicy]], out: _Collector) -> None:
    by_key: dict[tuple[str, int], int] = {}
    by_scope_time: dict[tuple[str, str | None, datetime], int] = {}
    lineage: dict[str, list[tuple[int, SplitPolicy]]] = {}
    for index, p in policies:
        where = f"policy[{index}] (id {p.policy_id!r})"
        if (p.policy_id, p.version) in by_key:
            out.add(where, f"version {p.version} is defined twice (also policy[{by_key[p.policy_id, p.version]}])")
        by_key.setdefault((p.policy_id, p.version), index)
        scope_time = (p.lapas_id, p.sku, p.effective_from)
        if scope_time in by_scope_time:
            out.add(
                where,
                f"field 'effective_from': policy[{by_scope_time[scope_time]}] has the same lapas, sku "
                "and effective_from, so selection would be ambiguous",
            )
        by_scope_time.setdefault(scope_time, index)
        lineage.setdefault(p.policy_id, []).append((index, p))
    for versions in lineage.values():
        first = versions[0][1]
        ordered = sorted(versions, key=lambda item: item[1].version)
        for (index, p), (_, prev) in zip(ordered[1:], ordered, strict=False):
            where = f"policy[{index}] (id {p.policy_id!r})"
            if (p.lapas_id, p.sku) != (first.lapas_id, first.sku):
                out.add(
                    where,
                    "field 'lapas_id'/'sku': every version of a policy must keep the same lapas and sku",
                )
            if p.effective_from <= prev.effective_from:
                out.add(
                    where,
                    f"field 'effective_from': version {p.version} must start after version "
                    f"{prev.version} ({utc_iso(prev.effective_from)})",
                )


def parse_policies(data: object, source: str) -> list[SplitPolicy]:
    """Validate loaded YAML/JSON data (``{"policies": [...]}`` or a bare list) into split policies.

    Every problem is reported at once in one :class:`PolicyError`, each line naming ``source``, the policy
    index and id, and the field. Also checked across policies: ``(policy_id, version)`` unique, versions of
    one policy id keep their lapas and sku and start strictly later, and no two policies share lapas, sku
    and ``effective_from``.
    """
    out = _Collector(source)
    if isinstance(data, Mapping):
        for key in data:
            if key != "policies":
                out.add(f"top level: field {key!r}", "unknown field (allowed: policies)")
        data = data.get("policies")
    if not isinstance(data, list) or not data:
        out.add("top level", "expected a non-empty list of policies (or a mapping with key 'policies')")
        raise PolicyError("\n".join(out.errors))
    parsed = [(i, p) for i, raw in enumerate(data) if (p := _parse_one(i, raw, out)) is not None]
    _cross_check(parsed, out)
    if out.errors:
        raise PolicyError("\n".join(out.errors))
    return [p for _, p in parsed]


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
