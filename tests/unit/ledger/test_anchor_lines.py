"""Anchor lines (services/ledger/anchor.py): what ``verify --anchor`` appends reads back the same, its HMAC covers
every field, and a line that is not an anchor is named with what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.ledger.anchor import Anchor, AnchorKey, append_anchor, read_anchors
from services.ledger.reports import Verification

KEY = AnchorKey("K", b"0123456789abcdef-key")
HEAD = Anchor(42, "ab" * 32, "2026-12-03T02:15:00Z", "fin-01", "ani")


def test_a_signed_line_reads_back_and_its_signature_covers_every_field() -> None:
    signed = HEAD.signed(KEY)
    assert Anchor.parse(signed.line()) == signed and signed.signature_matches(KEY)
    assert not signed.signature_matches(AnchorKey("K2", b"another-key-0123456"))
    for field, value in [
        ("sequence", 41),
        ("head_hash", "cd" * 32),
        ("anchored_at", "x"),
        ("host", "h"),
        ("user", "u"),
    ]:
        edited = json.loads(signed.line()) | {field: value}
        assert not Anchor.parse(json.dumps(edited)).signature_matches(KEY), field
    assert not HEAD.signature_matches(KEY), "an unsigned line never matches"


def test_only_an_intact_chain_is_anchored() -> None:
    anchor = Anchor.here_and_now(Verification(7, "ef" * 32, None, None))
    assert (anchor.sequence, anchor.head_hash) == (7, "ef" * 32) and anchor.anchored_at.endswith("Z")
    with pytest.raises(ValueError, match="only an intact chain"):
        Anchor.here_and_now(Verification(7, "ef" * 32, 3, "entry 3 does not match its hash"))


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
