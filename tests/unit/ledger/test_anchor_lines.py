"""Anchor lines (services/ledger/anchor.py): what ``verify --anchor`` appends reads back the same, its HMAC covers
every field, a line of the format before segments (a chain head) still reads and verifies, and a line that is not an
anchor is named with what is wrong."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

from services.ledger.anchor import Anchor, AnchorKey, append_anchor, read_anchors
from services.ledger.domain.anchors import plan_anchor
from services.ledger.domain.hashchain import SegmentHead

KEY = AnchorKey("K", b"0123456789abcdef-key")
HEAD = Anchor(42, "ab" * 32, "2026-12-03T02:15:00Z", "fin-01", "ani")
LEGACY = Anchor(7, "cd" * 32, "2026-11-03T02:15:00Z", "fin-01", "ani", legacy=True)


def test_a_signed_line_reads_back_and_its_signature_covers_every_field() -> None:
    signed = HEAD.signed(KEY)
    assert Anchor.parse(signed.line()) == signed and signed.signature_matches(KEY)
    assert not signed.signature_matches(AnchorKey("K2", b"another-key-0123456"))
    for field, value in [
        ("anchor_no", 41),
        ("anchor_hash", "cd" * 32),
        ("anchored_at", "x"),
        ("host", "h"),
        ("user", "u"),
    ]:
        edited = json.loads(signed.line()) | {field: value}
        assert not Anchor.parse(json.dumps(edited)).signature_matches(KEY), field
    assert not HEAD.signature_matches(KEY), "an unsigned line never matches"


def test_a_line_publishes_a_database_anchor() -> None:
    taken = plan_anchor(None, [SegmentHead("s0", 3, "ef" * 32)], "manual", datetime(2026, 12, 3, tzinfo=UTC))
    assert taken is not None
    anchor = Anchor.here_and_now(taken)
    assert (anchor.number, anchor.hash, anchor.legacy) == (1, taken.anchor_hash, False)
    assert anchor.anchored_at.endswith("Z") and anchor.label == "anchor 1"
    assert set(json.loads(anchor.line())) == {"anchor_hash", "anchor_no", "anchored_at", "host", "user"}


def test_a_line_written_before_segments_still_reads_and_its_signature_still_verifies() -> None:
    # the exact line (and signature payload) the single-chain format wrote
    fields = {
        "anchored_at": LEGACY.anchored_at,
        "head_hash": LEGACY.hash,
        "host": "fin-01",
        "sequence": 7,
        "user": "ani",
    }
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    old = json.dumps(fields | {"hmac_sha256": hmac.new(KEY.secret, payload, hashlib.sha256).hexdigest()})
    parsed = Anchor.parse(old)
    assert parsed.legacy and (parsed.number, parsed.hash, parsed.label) == (7, LEGACY.hash, "head 7")
    assert parsed.signature_matches(KEY) and Anchor.parse(parsed.line()) == parsed
    assert not Anchor.parse(json.dumps(json.loads(old) | {"sequence": 8})).signature_matches(KEY)


def test_lines_are_appended_and_bad_ones_named(tmp_path: Path) -> None:
    path = tmp_path / "anchors.jsonl"
    append_anchor(path, HEAD)
    append_anchor(path, HEAD.signed(KEY))
    with path.open("a") as f:
        f.write("\nnot json\n[1]\n" + json.dumps({"sequence": -1, "head_hash": "", "anchored_at": "", "host": "",
                                                    "user": ""}) + "\n{\"sequence\": 1}\n")  # fmt: skip
    read = read_anchors(path)
    assert read[:2] == [(1, HEAD), (2, HEAD.signed(KEY))]
    assert [item for _, item in read[2:]] == [
        "line 4 is not an anchor: not a JSON object",
        "line 5 is not an anchor: not a JSON object",
        "line 6 is not an anchor: sequence -1 is not a whole number >= 0",
        "line 7 is not an anchor: missing anchored_at, head_hash, host, user",
    ]
