"""Reading the ``tax_settings`` section of a policy file: every problem reported at once (see
:mod:`services.ledger.domain.tax` for what a setting means).

Format (one mapping per version; shares and rates are quoted strings like the policies')::

    tax_settings:
      - lapas_id: cipinang
        version: 1
        effective_from: "2025-01-01T00:00:00+07:00"
        pkp: true                 # sales carry PPN (default false)
        ppn_rate: "12%"           # default 12%
        ppn_base: "11/12"         # default 11/12 (PPN = rate x base x price excluding PPN)
        pph22: creditable         # creditable (default) | expense | exempt
        pph22_rate: "0.5%"        # what a settlement's withholding is checked against (default 0.5%)
        pph22_tolerance: 100      # rupiah a withholding may differ from that before a person reviews it (default 0)
        description: ...
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction

import orjson

from services.ledger.domain.accounts import OWNER_PATTERN
from services.ledger.domain.canonical import utc_iso
from services.ledger.domain.errors import PolicyError
from services.ledger.domain.policy_file import parse_share, parse_time
from services.ledger.domain.tax import Pph22Treatment, TaxSetting

__all__ = ["parse_tax_settings", "tax_setting_body", "tax_setting_hash"]

_KEYS = (
    "lapas_id",
    "version",
    "effective_from",
    "pkp",
    "ppn_rate",
    "ppn_base",
    "pph22",
    "pph22_rate",
    "pph22_tolerance",
    "description",
)


def _share(raw: Mapping[object, object], name: str, default: Fraction, problems: list[str]) -> Fraction:
    if name not in raw:
        return default
    try:
        value = parse_share(raw[name])
    except ValueError as exc:
        problems.append(f"field {name!r}: {exc}")
        return default
    if value >= 1:
        problems.append(f"field {name!r}: must be below 100%")
    return value


def _parse_one(raw: object, problems: list[str]) -> TaxSetting | None:
    if not isinstance(raw, Mapping):
        problems.append(f"must be a mapping, got {type(raw).__name__}")
        return None
    before = len(problems)
    problems.extend(f"field {k!r}: unknown field (allowed: {', '.join(_KEYS)})" for k in raw if k not in _KEYS)
    lapas = raw.get("lapas_id")
    if not isinstance(lapas, str) or not OWNER_PATTERN.fullmatch(lapas):
        problems.append(f"field 'lapas_id': a lapas id is required, got {lapas!r}")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        problems.append(f"field 'version': must be an integer >= 1, got {version!r}")
    effective, problem = parse_time(raw.get("effective_from"))
    if problem:
        problems.append(f"field 'effective_from': {problem}")
    pkp = raw.get("pkp", False)
    if not isinstance(pkp, bool):
        problems.append(f"field 'pkp': must be true or false, got {pkp!r}")
    treatment = raw.get("pph22", Pph22Treatment.CREDITABLE.value)
    if treatment not in {t.value for t in Pph22Treatment}:
        allowed = ", ".join(t.value for t in Pph22Treatment)
        problems.append(f"field 'pph22': must be one of {allowed}, got {treatment!r}")
    tolerance = raw.get("pph22_tolerance", 0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        problems.append(f"field 'pph22_tolerance': must be whole rupiah >= 0, got {tolerance!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append("field 'description': must be a string")
    rate = _share(raw, "ppn_rate", Fraction(12, 100), problems)
    base = _share(raw, "ppn_base", Fraction(11, 12), problems) if "ppn_base" in raw else Fraction(11, 12)
    pph22_rate = _share(raw, "pph22_rate", Fraction(5, 1000), problems)
    if len(problems) > before:
        return None
    assert isinstance(version, int) and isinstance(effective, datetime) and isinstance(tolerance, int)
    return TaxSetting(
        lapas_id=str(lapas),
        version=version,
        effective_from=effective,
        pkp=bool(pkp),
        ppn_rate=rate,
        ppn_base=base,
        pph22=Pph22Treatment(treatment),
        pph22_rate=pph22_rate,
        pph22_tolerance=tolerance,
        description=str(description),
    )


def parse_tax_settings(data: object, source: str) -> list[TaxSetting]:
    """The tax settings of loaded YAML/JSON data (``{"tax_settings": [...]}``, or a bare list); none when the
    mapping has no such section. Every problem is reported at once in one :class:`PolicyError`, naming ``source``
    and the setting's index; versions of one lapas must be unique and start strictly later."""
    if isinstance(data, Mapping):
        data = data.get("tax_settings", [])
    if not isinstance(data, list):
        raise PolicyError(f"{source}: tax_settings: expected a list of tax settings")
    errors: list[str] = []
    parsed: list[TaxSetting] = []
    for i, raw in enumerate(data):
        problems: list[str] = []
        setting = _parse_one(raw, problems)
        lapas = raw.get("lapas_id") if isinstance(raw, Mapping) else None
        errors += [f"{source}: tax_settings[{i}] ({lapas!r}): {p}" for p in problems]
        if setting is not None:
            parsed.append(setting)
    by_lapas: dict[str, list[TaxSetting]] = {}
    for s in parsed:
        by_lapas.setdefault(s.lapas_id, []).append(s)
    for lapas, versions in by_lapas.items():
        versions.sort(key=lambda s: s.version)
        for prev, s in itertools.pairwise(versions):
            if s.version == prev.version:
                errors.append(f"{source}: tax_settings of {lapas!r}: version {s.version} appears twice")
            elif s.effective_from <= prev.effective_from:
                errors.append(
                    f"{source}: tax_settings of {lapas!r}: version {s.version} must start after version "
                    f"{prev.version} ({utc_iso(prev.effective_from)})"
                )
    if errors:
        raise PolicyError("\n".join(errors))
    return parsed


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def tax_setting_body(setting: TaxSetting) -> dict[str, object]:
    """The stored form of a setting (reads back through :func:`parse_tax_settings`)."""
    return {
        "lapas_id": setting.lapas_id,
        "version": setting.version,
        "effective_from": setting.effective_from.isoformat(),
        "pkp": setting.pkp,
        "ppn_rate": _fraction(setting.ppn_rate),
        "ppn_base": _fraction(setting.ppn_base),
        "pph22": setting.pph22.value,
        "pph22_rate": _fraction(setting.pph22_rate),
        "pph22_tolerance": setting.pph22_tolerance,
        "description": setting.description,
    }


def tax_setting_hash(setting: TaxSetting) -> str:
    """SHA-256 of the setting's meaning (the description aside): the same version loaded again must match it."""
    body = {k: v for k, v in tax_setting_body(setting).items() if k != "description"}
    body["effective_from"] = utc_iso(setting.effective_from)
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
