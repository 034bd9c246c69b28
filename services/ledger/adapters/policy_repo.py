"""Split policies and tax settings stored as data: loaded once per version, never changed, cached per process."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.errors import LedgerDomainError
from services.ledger.domain.policy import ClawBack, Deduction, SplitBase, SplitPolicy, policy_hash
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.tax import TaxSetting
from services.ledger.domain.tax_file import parse_tax_settings, tax_setting_body, tax_setting_hash


class PolicyConflict(LedgerDomainError):
    """A policy id and version already loaded with different content."""


def _body(policy: SplitPolicy) -> dict[str, object]:
    body: dict[str, object] = {"sku": policy.sku} if policy.sku else {}
    if policy.claw_back_premi is not ClawBack.NEVER:
        body["claw_back_premi"] = policy.claw_back_premi.value
    if policy.base is not SplitBase.PROFIT:
        body["base"] = policy.base.value  # the base is part of the version every posting names (policy_ref)
    if policy.deductions:
        body["deductions"] = [_deduction(d) for d in policy.deductions]
    return {
        **body,
        "policy_id": policy.policy_id,
        "version": policy.version,
        "lapas_id": policy.lapas_id,
        "effective_from": policy.effective_from.isoformat(),
        "rules": [
            {"target": r.target.value, "share": f"{r.share.numerator}/{r.share.denominator}"} for r in policy.rules
        ],
    }


def _deduction(d: Deduction) -> dict[str, object]:
    amount: dict[str, object] = (
        {"rate": f"{d.rate.numerator}/{d.rate.denominator}"} if d.rate is not None else {"amount_per_unit": d.per_unit}
    )
    return {"name": d.name, **amount, "account": d.account}


async def store_policies(uow: UnitOfWork, policies: Sequence[SplitPolicy]) -> tuple[int, int]:
    """Insert new policy versions; identical ones are skipped; changed ones raise. Returns (new, unchanged)."""
    existing = {
        (r.policy_id, r.version): r.policy_hash
        for r in await uow.conn.execute(
            text(f"SELECT policy_id, version, policy_hash FROM {uow.table('split_policies')}")
        )
    }
    new, same, conflicts = [], 0, []
    for p in policies:
        digest = policy_hash(p)
        seen = existing.get((p.policy_id, p.version))
        if seen is None:
            new.append(p)
        elif seen == digest:
            same += 1
        else:
            conflicts.append(f"policy {p.ref} is already loaded with different content; publish a new version")
    if conflicts:
        raise PolicyConflict("; ".join(conflicts))
    if new:
        await uow.conn.execute(
            text(
                f"INSERT INTO {uow.table('split_policies')} (policy_id, version, lapas_id, sku, effective_from, body, "
                "policy_hash) VALUES (:i, :v, :l, :s, :f, CAST(:b AS jsonb), :h)"
            ),
            [
                {
                    "i": p.policy_id,
                    "v": p.version,
                    "l": p.lapas_id,
                    "s": p.sku,
                    "f": p.effective_from,
                    "b": orjson.dumps(_body(p)).decode(),
                    "h": policy_hash(p),
                }
                for p in new
            ],
        )
    return len(new), same


async def store_tax_settings(uow: UnitOfWork, settings: Sequence[TaxSetting]) -> tuple[int, int]:
    """Insert new tax setting versions; identical ones are skipped; changed ones raise. Returns (new, unchanged)."""
    table = uow.table("tax_settings")
    existing = {
        (r.lapas_id, r.version): r.setting_hash
        for r in await uow.conn.execute(text(f"SELECT lapas_id, version, setting_hash FROM {table}"))
    }
    new = []
    same = 0
    conflicts = []
    for s in settings:
        seen = existing.get((s.lapas_id, s.version))
        if seen is None:
            new.append(s)
        elif seen == tax_setting_hash(s):
            same += 1
        else:
            conflicts.append(f"tax setting {s.ref} is already loaded with different content; publish a new version")
    if conflicts:
        raise PolicyConflict("; ".join(conflicts))
    if new:
        await uow.conn.execute(
            text(
                f"INSERT INTO {table} (lapas_id, version, effective_from, body, setting_hash) "
                "VALUES (:l, :v, :f, CAST(:b AS jsonb), :h)"
            ),
            [
                {
                    "l": s.lapas_id,
                    "v": s.version,
                    "f": s.effective_from,
                    "b": orjson.dumps(tax_setting_body(s)).decode(),
                    "h": tax_setting_hash(s),
                }
                for s in new
            ],
        )
    return len(new), same


def stamp_sql(schema: str) -> str:
    """An SQL expression whose value changes whenever a split policy or tax setting version is loaded (what
    :meth:`PolicyCache.load` compares), for a caller that reads it with its other reads in one statement."""
    policies, taxes = f"{schema}.split_policies", f"{schema}.tax_settings"
    return (
        f"json_build_array((SELECT count(*) FROM {policies}), (SELECT max(loaded_at) FROM {policies}), "
        f"(SELECT count(*) FROM {taxes}), (SELECT max(loaded_at) FROM {taxes}))"
    )


class PolicyCache:
    """All stored split policies and tax settings, re-read only when a new version of either was loaded (one
    query checks both, once per batch)."""

    def __init__(self) -> None:
        self._stamp: list[object] | None = None
        self._policies: list[SplitPolicy] = []
        self._taxes: list[TaxSetting] = []

    async def load(
        self, uow: UnitOfWork, stamp: list[object] | None = None
    ) -> tuple[list[SplitPolicy], list[TaxSetting]]:
        """The current policies and tax settings; ``stamp``: the value of :func:`stamp_sql` read in this transaction,
        if the caller read it already."""
        policies, taxes = uow.table("split_policies"), uow.table("tax_settings")
        if stamp is None:
            stamp = list((await uow.conn.execute(text(f"SELECT {stamp_sql(uow.schema)}"))).scalar_one())
        if stamp != self._stamp:
            bodies = [
                r.body for r in await uow.conn.execute(text(f"SELECT body FROM {policies} ORDER BY policy_id, version"))
            ]
            self._policies = parse_policies(bodies, policies) if bodies else []
            settings = [
                r.body for r in await uow.conn.execute(text(f"SELECT body FROM {taxes} ORDER BY lapas_id, version"))
            ]
            self._taxes = parse_tax_settings(settings, taxes)
            self._stamp = stamp
        return self._policies, self._taxes
