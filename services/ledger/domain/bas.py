"""The Bagan Akun Standar (BAS) mapping: each account kind of the chart → a code of the government standard chart of
accounts (PMK 214/PMK.05/2013 and its updates), so a per-lapas report can be re-keyed into the ministry's accounting
application. Pure: parsing and validating the mapping's content; the file is ``services/ledger/bas_mapping.yaml``.

Every account kind of :data:`services.ledger.domain.accounts.KINDS` must be mapped, and nothing else; a code is six
digits (the BAS account segment); ``status`` says whether the code was confirmed against a published list
(``confirmed``) or is configuration a finance officer still has to confirm (``to_confirm``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.ledger.domain import accounts
from services.ledger.domain.errors import LedgerDomainError

__all__ = ["BasCode", "BasMapping", "BasMappingError", "parse_bas"]

_CODE = re.compile(r"[1-9][0-9]{5}")
_STATUSES = ("confirmed", "to_confirm")


class BasMappingError(LedgerDomainError):
    """A mapping file that is not usable; the message names the file and the kind or field."""


@dataclass(frozen=True, slots=True)
class BasCode:
    """The BAS account code of one account kind, its BAS name and whether the code is confirmed."""

    code: str
    name: str
    status: str

    @property
    def confirmed(self) -> bool:
        """Whether the code was checked against a published BAS list."""
        return self.status == "confirmed"


@dataclass(frozen=True, slots=True)
class BasMapping:
    """Account kind (``type:kind``) → :class:`BasCode`."""

    codes: Mapping[str, BasCode]

    def of(self, account: str) -> BasCode:
        """The BAS code of an account code (its kind's)."""
        kind = accounts.account_info(account).kind
        return self.codes[f"{kind.type}:{kind.name}"]


def parse_bas(data: Any, source: str) -> BasMapping:
    """The mapping in ``data`` (the YAML document of ``source``); :class:`BasMappingError` names what is wrong."""
    if not isinstance(data, Mapping) or not isinstance(data.get("kinds"), Mapping):
        raise BasMappingError(f"{source}: expected a mapping with a 'kinds' mapping (account kind → code)")
    kinds = {f"{k.type}:{k.name}" for k in accounts.KINDS.values()}
    given: Mapping[Any, Any] = data["kinds"]
    unknown = sorted(str(k) for k in given if k not in kinds)
    if unknown:
        raise BasMappingError(f"{source}: unknown account kinds {unknown} (the chart has {sorted(kinds)})")
    missing = sorted(kinds - set(given))
    if missing:
        raise BasMappingError(f"{source}: account kinds without a BAS code: {missing}")
    codes = {}
    for kind in sorted(kinds):
        entry = given[kind]
        if not isinstance(entry, Mapping):
            raise BasMappingError(f"{source}: kind {kind!r}: expected {{code, name, status}}, got {entry!r}")
        code, name, status = str(entry.get("code", "")), entry.get("name"), entry.get("status")
        if not _CODE.fullmatch(code):
            raise BasMappingError(
                f"{source}: kind {kind!r}: field 'code': a BAS account code is 6 digits, got {code!r}"
            )
        if not isinstance(name, str) or not name.strip():
            raise BasMappingError(f"{source}: kind {kind!r}: field 'name': the BAS account's name is required")
        if status not in _STATUSES:
            raise BasMappingError(f"{source}: kind {kind!r}: field 'status': one of {list(_STATUSES)}, got {status!r}")
        codes[kind] = BasCode(code, name.strip(), str(status))
    return BasMapping(codes)
