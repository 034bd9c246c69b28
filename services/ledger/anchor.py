"""The daily anchor: the head of a verified hash chain written outside the database, and checked against it later.

The chain (:mod:`services.ledger.domain.hashchain`) shows an entry altered after posting — unless whoever altered it
also recomputed every hash after it, which the schema owner or a database superuser can. An anchor closes that gap:
after ``karya ledger verify`` found the chain intact and every balance equal to its lines, ``--anchor FILE``
appends one line to ``FILE`` (opened for appending only, never rewritten) with the head sequence and hash, when and
on which host by which user. Kept where the database's administrators cannot write (a finance share, the daily
report, a ticket), the file pins history: ``karya ledger anchor-check FILE`` reads every anchored head and compares
it with the entry at that sequence today. A hash that differs, or an entry that is gone, is tampering.

A line is one JSON object (keys sorted)::

    {"anchored_at": "2026-12-03T02:15:00Z", "head_hash": "…", "host": "fin-01", "sequence": 4812, "user": "ani"}

With ``--anchor-key-env NAME`` it also carries ``"hmac_sha256"``: the hex HMAC-SHA256, keyed with the value of the
environment variable ``NAME``, of the line's other fields in canonical JSON (sorted keys, no spaces), so a line
edited in the file (to match an altered chain) is found too. The key is not stored anywhere by Karya.
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

from sqlalchemy import text

from infra.cli_root import CliRoot
from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.hashchain import GENESIS_HASH
from services.ledger.reports import Verification, verify_chain

__all__ = [
    "MIN_KEY_BYTES",
    "Anchor",
    "AnchorFinding",
    "AnchorKey",
    "anchor_key",
    "append_anchor",
    "check_anchors",
    "read_anchors",
]

MIN_KEY_BYTES = 16
_FIELDS = ("anchored_at", "head_hash", "host", "sequence", "user")
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
    """One anchored head: the chain's last entry (sequence, hash) when a verification found it intact."""

    sequence: int
    head_hash: str
    anchored_at: str
    host: str
    user: str
    signature: str | None = None

    @classmethod
    def here_and_now(cls, verification: Verification) -> Anchor:
        """The head of an intact ``verification``, anchored at the current UTC time by this host and OS user."""
        if verification.first_broken is not None:
            raise ValueError("only an intact chain is anchored")
        at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name and no passwd entry (some containers)
            user = f"uid-{os.getuid()}"
        return cls(verification.entries, verification.head_hash, at, socket.gethostname(), user)

    def _payload(self) -> bytes:
        fields = {name: getattr(self, name) for name in _FIELDS}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

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
        fields: dict[str, object] = {name: getattr(self, name) for name in _FIELDS}
        if self.signature is not None:
            fields[_SIGNATURE] = self.signature
        return json.dumps(fields, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)

    @classmethod
    def parse(cls, line: str) -> Anchor:
        """Read a file line; raises ``ValueError`` naming what is wrong."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError("not a JSON object") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        unknown = sorted(set(data) - {*_FIELDS, _SIGNATURE})
        if unknown:
            raise ValueError(f"unknown field {', '.join(unknown)}")
        sequence, signature = data["sequence"], data.get(_SIGNATURE)
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
            raise ValueError(f"sequence {sequence!r} is not a whole number >= 0")
        texts = {name: data[name] for name in ("head_hash", "anchored_at", "host", "user")}
        if not all(isinstance(value, str) for value in texts.values()) or not isinstance(signature, str | None):
            raise ValueError("anchored_at, head_hash, host, user and hmac_sha256 must be strings")
        return cls(sequence, **texts, signature=signature)


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
    """Something wrong with one line of an anchor file (``sequence``: the anchored head, when the line was read)."""

    line: int
    sequence: int | None
    problem: str


async def check_anchors(
    uow: UnitOfWork, anchors: Sequence[tuple[int, Anchor | str]], key: AnchorKey | None
) -> tuple[Verification, list[AnchorFinding]]:
    """Recompute the chain and compare every anchored head with the entry at its sequence today.

    Findings: a line that is not an anchor; with ``key``, a line unsigned or whose signature does not match; an
    anchored sequence past the journal's end (entries removed) or whose entry's hash is not the anchored one (the
    entry or one before it altered, and the hashes after it recomputed). The chain's own verification is returned
    as well (a broken link is tampering the anchors may not reach)."""
    chain = await verify_chain(uow)
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
                    item.sequence,
                    f"line {number} (head {item.sequence}) {what} under the key in {key.env}: the line was written "
                    "without the key, edited after it was written, or signed with another key",
                )
            )
        read.append((number, item))
    stored = await _hashes_at(uow, sorted({a.sequence for _, a in read if a.sequence > 0}))
    for number, a in read:
        now = GENESIS_HASH if a.sequence == 0 else stored.get(a.sequence)
        where = f"line {number}: head {a.sequence} anchored at {a.anchored_at} by {a.user}@{a.host}"
        if now is None:
            findings.append(AnchorFinding(number, a.sequence, f"{where}: entry {a.sequence} is GONE from the journal"))
        elif now != a.head_hash:
            findings.append(
                AnchorFinding(
                    number,
                    a.sequence,
                    f"{where}: entry {a.sequence} DIFFERS from its anchor (anchored hash {a.head_hash}, the journal "
                    f"has {now}): it or an entry before it was altered after the anchor",
                )
            )
    return chain, findings


async def _hashes_at(uow: UnitOfWork, sequences: list[int]) -> dict[int, str]:
    if not sequences:
        return {}
    rows = await uow.conn.execute(
        text(f"SELECT sequence, chain_hash FROM {uow.table('journal_entries')} WHERE sequence = ANY(:s)"),
        {"s": sequences},
    )
    return {int(r.sequence): str(r.chain_hash) for r in rows}
