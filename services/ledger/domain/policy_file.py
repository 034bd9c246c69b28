"""Reading split-policy files: every problem of a file reported at once, then the policies checked across each
other (see :mod:`services.ledger.domain.policy` for the format and what a policy means)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction

from services.ledger.domain.accounts import OWNER_PATTERN
from services.ledger.domain.canonical import utc_iso
from services.ledger.domain.errors import PolicyError
from services.ledger.domain.policy import (
    POLICY_ID_PATTERN,
    ClawBack,
    Deduction,
    ShareRule,
    ShareTarget,
    SplitBase,
    SplitPolicy,
    deduction_problems,
    rule_problems,
)

__all__ = ["parse_policies", "parse_share", "parse_time"]

_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_RATIO = re.compile(r"(\d+)\s*/\s*(\d+)")
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_POLICY_KEYS = (
    "policy_id",
    "version",
    "lapas_id",
    "sku",
    "effective_from",
    "description",
    "rules",
    "claw_back_premi",
    "base",
    "deductions",
)
_RULE_KEYS = ("target", "share")
_DEDUCTION_KEYS = ("name", "rate", "amount_per_unit", "account")


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
    effective, problem = parse_time(raw.get("effective_from"))
    if problem:
        out.add(_where(index, raw, "effective_from"), problem)
    description = raw.get("description", "")
    if not isinstance(description, str):
        out.add(_where(index, raw, "description"), "must be a string")
    rules = _parse_rules(index, raw, out)
    claw_back = raw.get("claw_back_premi", ClawBack.NEVER.value)
    if claw_back not in {c.value for c in ClawBack}:
        out.add(
            _where(index, raw, "claw_back_premi"),
            f"must be one of {', '.join(c.value for c in ClawBack)}, got {claw_back!r}",
        )
    base = raw.get("base", SplitBase.PROFIT.value)
    if base not in {b.value for b in SplitBase}:
        out.add(_where(index, raw, "base"), f"must be one of {', '.join(b.value for b in SplitBase)}, got {base!r}")
    deductions = _parse_deductions(index, raw, out)

    if len(out.errors) > before or None in (policy_id, lapas_id, effective) or rules is None or deductions is None:
        return None
    assert isinstance(version, int) and isinstance(effective, datetime)  # narrowed by the checks above
    problems = rule_problems(rules, SplitBase(base)) + deduction_problems(deductions, str(lapas_id))
    for problem in problems:
        name, _, message = problem.partition(": ")
        out.add(_where(index, raw, name), message)
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
        claw_back_premi=ClawBack(claw_back),
        base=SplitBase(base),
        deductions=tuple(deductions),
    )


def parse_time(value: object) -> tuple[datetime | None, str | None]:
    """An ``effective_from`` value (an aware ISO time, or a YAML timestamp) and the problem with it, if any."""
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


def _parse_deductions(index: int, raw: Mapping[object, object], out: _Collector) -> list[Deduction] | None:
    """The optional ``deductions`` list, each ``{name, rate | amount_per_unit, account}``; ``None`` on a problem
    of its shape (what a well-formed deduction means is checked by :func:`deduction_problems`)."""
    value = raw.get("deductions", [])
    if not isinstance(value, list):
        out.add(_where(index, raw, "deductions"), "must be a list of {name, rate | amount_per_unit, account}")
        return None
    deductions: list[Deduction] = []
    ok = True
    for j, item in enumerate(value):
        name = f"deductions[{j}]"
        if not isinstance(item, Mapping):
            out.add(
                _where(index, raw, name), f"must be a mapping {{name, rate | amount_per_unit, account}}, got {item!r}"
            )
            ok = False
            continue
        for key in item:
            if key not in _DEDUCTION_KEYS:
                out.add(_where(index, raw, f"{name}.{key}"), f"unknown field (allowed: {', '.join(_DEDUCTION_KEYS)})")
                ok = False
        texts = {key: item.get(key) for key in ("name", "account")}
        for key, text in texts.items():
            if not isinstance(text, str):
                out.add(_where(index, raw, f"{name}.{key}"), f"is required as a string, got {text!r}")
                ok = False
        rate, per_unit = item.get("rate"), item.get("amount_per_unit")
        if rate is not None:
            try:
                rate = parse_share(rate)
            except ValueError as exc:
                out.add(_where(index, raw, f"{name}.rate"), str(exc))
                ok = False
        if per_unit is not None and (isinstance(per_unit, bool) or not isinstance(per_unit, int)):
            out.add(
                _where(index, raw, f"{name}.amount_per_unit"), f"must be whole rupiah (an integer), got {per_unit!r}"
            )
            ok = False
        if ok:
            deductions.append(Deduction(str(texts["name"]), str(texts["account"]), rate, per_unit))
    return deductions if ok else None


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
            if key not in ("policies", "tax_settings"):  # tax settings: services/ledger/domain/tax_file.py
                out.add(f"top level: field {key!r}", "unknown field (allowed: policies, tax_settings)")
        data = data.get("policies")
    if not isinstance(data, list) or not data:
        out.add("top level", "expected a non-empty list of policies (or a mapping with key 'policies')")
        raise PolicyError("\n".join(out.errors))
    parsed = [(i, p) for i, raw in enumerate(data) if (p := _parse_one(i, raw, out)) is not None]
    _cross_check(parsed, out)
    if out.errors:
        raise PolicyError("\n".join(out.errors))
    return [p for _, p in parsed]
