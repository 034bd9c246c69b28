"""The daily anchor: the hash of the latest database anchor written outside the database, and checked against it later.

The chains (:mod:`services.ledger.domain.hashchain`) and the anchors over their heads
(:mod:`services.ledger.domain.anchors`, ``ledger.chain_anchors``) show an entry or an anchor altered after the fact —
unless whoever altered it also recomputed every hash after it (the entries of its segment, the segment's head, every
anchor since), which the schema owner or a database superuser can. Publishing an anchor closes that gap: with
``--anchor FILE``, ``karya ledger verify`` takes a fresh anchor (reason ``manual``), verifies every segment, every
anchor and every balance, and — only if all are intact — appends one line to ``FILE`` (opened for appending only,
never rewritten) with the latest anchor's number and hash, when, on which host and by which user. An anchor's hash
pins every anchor before it and, through the heads they name, every entry of every segment up to those heads. Kept
where the database's administrators cannot write (a finance share, the daily report, a ticket), the file pins
history: ``karya ledger anchor-check FILE`` compares each line with ``ledger.chain_anchors`` today. A hash that
differs, or an anchor that is gone, is tampering.

A line is one JSON object (keys sorted)::

    {"anchor_hash": "…", "anchor_no": 812, "anchored_at": "2026-12-03T02:15:00Z", "host": "fin-01", "user": "ani"}

Lines written before the journal had segments name the single chain's head instead — ``"sequence"`` and
``"head_hash"`` in place of ``"anchor_no"`` and ``"anchor_hash"`` — and are still checked: against the entry with that
sequence, which is in the ``legacy`` segment.

With ``--anchor-key-env NAME`` a line also carries ``"hmac_sha256"``: the hex HMAC-SHA256, keyed with the value of the
environment variable ``NAME``, of the line's other fields in canonical JSON (sorted keys, no spaces), so a line
edited in the file (to match an altered database) is found too. The key is not stored anywhere by Karya.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger.adapters.anchors_repo import anchor_hashes, entry_hashes
from services.ledger.chain_anchor import AnchorVerification, verify_anchors
from services.ledger.domain.anchors import ChainAnchor
from services.ledger.domain.hashchain import GENESIS_HASH, LEGACY_SEGMENT
from services.ledger.reports import Verification, verify_chain

__all__ = [
    "MIN_KEY_BYTES",
    "Anchor",
    "AnchorCheck",
    "AnchorFinding",
    "AnchorKey",
    "anchor_key",
    "append_anchor",
    "check_anchors",
    "read_anchors",
]

MIN_KEY_BYTES = 16
_FIELDS = ("anchor_hash", "anchor_no", "anchored_at", "host", "user")
_LEGACY_FIELDS = ("anchored_at", "head_hash", "host", "sequence", "user")
_SIGNATURE = "hmac_sha256"


@dataclass(frozen=True, slots=True)
class AnchorKey:
    """The HMAC key of signed anchor lines and the environment variable it was read from."""

    env: str
    secret: bytes

    @classmethod
    def from_env(cls, name: str) -> AnchorKey:
        """The key in environment variable ``name``; stops the command (before it does anything) when it is unset
        or shorter than :data:`MIN_KEY_BYTES`."""
        value = os.environ.get(name, "")
        if not value:
            raise SystemExit(
                f"refusing to start: --anchor-key-env {name} names an environment variable that is not set"
            )
        if len(value.encode()) < MIN_KEY_BYTES:
            raise SystemExit(f"refusing to start: the key in {name} is shorter than {MIN_KEY_BYTES} bytes")
        return cls(name, value.encode())


def anchor_key(root: CliRoot, env: str | None) -> AnchorKey | None:
    """The key a command was asked to use (``--anchor-key-env``), read once per invocation through its root (a test
    may hand it in the root's ``settings_read``); ``None`` when none was asked for."""
    return None if env is None else root.settings(AnchorKey, lambda: AnchorKey.from_env(env))


@dataclass(frozen=True, slots=True)
class Anchor:
    """One published line: a database anchor's number and hash — or, in a line written before segments
    (``legacy``), the single chain's head: its last entry's sequence and hash."""

    number: int
    hash: str
    anchored_at: str
    host: str
    user: str
    signature: str | None = None
    legacy: bool = False

    @classmethod
    def here_and_now(cls, anchor: ChainAnchor) -> Anchor:
        """``anchor`` published at the current UTC time by this host and OS user."""
        at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name and no passwd entry (some containers)
            user = f"uid-{os.getuid()}"
        return cls(anchor.anchor_no, anchor.anchor_hash, at, socket.gethostname(), user)

    @property
    def label(self) -> str:
        """What the line pins, for messages: ``anchor 12``, or ``head 3`` for a legacy line."""
        return f"head {self.number}" if self.legacy else f"anchor {self.number}"

    def _fields(self) -> dict[str, object]:
        if self.legacy:
            return {"anchored_at": self.anchored_at, "head_hash": self.hash, "host": self.host,
                    "sequence": self.number, "user": self.user}  # fmt: skip
        return {"anchor_hash": self.hash, "anchor_no": self.number, "anchored_at": self.anchored_at,
                "host": self.host, "user": self.user}  # fmt: skip

    def _payload(self) -> bytes:
        return json.dumps(self._fields(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def signed(self, key: AnchorKey) -> Anchor:
        """This anchor with its HMAC-SHA256 under ``key``."""
        return replace(self, signature=hmac.new(key.secret, self._payload(), hashlib.sha256).hexdigest())

    def signature_matches(self, key: AnchorKey) -> bool:
        """Whether the line carries a signature and it is this line's under ``key`` (compared in constant time)."""
        if self.signature is None:
            return False
        return hmac.compare_digest(self.signed(key).signature or "", self.signature)

    def line(self) -> str:
        """The file line (no newline)."""
        fields = self._fields()
        if self.signature is not None:
            fields[_SIGNATURE] = self.signature
        return json.dumps(fields, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)

    @classmethod
    def parse(cls, line: str) -> Anchor:
        """Read a file line (either format); raises ``ValueError`` naming what is wrong."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError("not a JSON object") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        legacy = "anchor_no" not in data and "sequence" in data
        names, number_field, hash_field = (
            (_LEGACY_FIELDS, "sequence", "head_hash") if legacy else (_FIELDS, "anchor_no", "anchor_hash")
        )
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        unknown = sorted(set(data) - {*names, _SIGNATURE})
        if unknown:
            raise ValueError(f"unknown field {', '.join(unknown)}")
        number, signature = data[number_field], data.get(_SIGNATURE)
        least = 0 if legacy else 1
        if isinstance(number, bool) or not isinstance(number, int) or number < least:
            raise ValueError(f"{number_field} {number!r} is not a whole number >= {least}")
        hash_, at, host, user = (data[name] for name in (hash_field, "anchored_at", "host", "user"))
        texts = (hash_, at, host, user)
        if not all(isinstance(value, str) for value in texts) or not isinstance(signature, str | None):
            raise ValueError(f"anchored_at, {hash_field}, host, user and hmac_sha256 must be strings")
        return cls(number, hash_, at, host, user, signature=signature, legacy=legacy)


def append_anchor(path: Path, anchor: Anchor) -> None:
    """Append ``anchor``'s line to ``path`` (created if absent; opened append-only, one write, synced to disk)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (anchor.line() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_anchors(path: Path) -> list[tuple[int, Anchor | str]]:
    """Every non-empty line of ``path`` with its line number: the anchor, or what is wrong with the line."""
    read: list[tuple[int, Anchor | str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            read.append((number, Anchor.parse(line)))
        except ValueError as exc:
            read.append((number, f"line {number} is not an anchor: {exc}"))
    return read


@dataclass(frozen=True, slots=True)
class AnchorFinding:
    """Something wrong with one line of an anchor file (``number``: the anchor's, or a legacy line's head sequence,
    when the line was read)."""

    line: int
    number: int | None
    problem: str


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """The database's own verification (every segment, every anchor) and what is wrong with the file's lines."""

    chain: Verification
    anchors: AnchorVerification
    findings: list[AnchorFinding]


async def check_anchors(
    uow: UnitOfWork, anchors: Sequence[tuple[int, Anchor | str]], key: AnchorKey | None
) -> AnchorCheck:
    """Verify every segment and every anchor, and compare every published line with the database today.

    Findings: a line that is not an anchor; with ``key``, a line unsigned or whose signature does not match; a
    published anchor gone from ``chain_anchors`` or whose hash there is not the published one (it, or an anchor, head
    or entry before it was rewritten); a legacy line whose entry is gone or has another hash. The database's own
    verification is returned as well (a broken link is tampering the lines may not reach)."""
    chain = await verify_chain(uow)
    checked = await verify_anchors(uow)
    findings: list[AnchorFinding] = []
    read: list[tuple[int, Anchor]] = []
    for number, item in anchors:
        if isinstance(item, str):
            findings.append(AnchorFinding(number, None, item))
            continue
        if key is not None and not item.signature_matches(key):
            what = "is not signed" if item.signature is None else "has a signature that does not match"
            findings.append(
                AnchorFinding(
                    number,
                    item.number,
                    f"line {number} ({item.label}) {what} under the key in {key.env}: the line was written "
                    "without the key, edited after it was written, or signed with another key",
                )
            )
        read.append((number, item))
    published = await anchor_hashes(uow, [a.number for _, a in read if not a.legacy])
    entries = await entry_hashes(uow, [a.number for _, a in read if a.legacy])
    for number, a in read:
        problem = _legacy_problem(a, entries) if a.legacy else _anchor_problem(a, published)
        if problem is not None:
            where = f"line {number}: {a.label} published at {a.anchored_at} by {a.user}@{a.host}"
            findings.append(AnchorFinding(number, a.number, f"{where}: {problem}"))
    return AnchorCheck(chain, checked, findings)


def _anchor_problem(a: Anchor, stored: dict[int, str]) -> str | None:
    now = stored.get(a.number)
    if now is None:
        return f"anchor {a.number} is GONE from the database"
    if now != a.hash:
        return (
            f"anchor {a.number} DIFFERS from its publication (published hash {a.hash}, the database has {now}): it, "
            "or an anchor, segment head or entry before it, was rewritten after publication"
        )
    return None


def _legacy_problem(a: Anchor, entries: dict[int, tuple[str, str]]) -> str | None:
    if a.number == 0:
        now: str | None = GENESIS_HASH
    else:
        found = entries.get(a.number)
        now = found[1] if found is not None and found[0] == LEGACY_SEGMENT else None
    if now is None:
        return f"entry {a.number} is GONE from the journal's legacy segment"
    if now != a.hash:
        return (
            f"entry {a.number} DIFFERS from its anchor (anchored hash {a.hash}, the journal has {now}): it or an "
            "entry before it was altered after the anchor"
        )
    return None
