"""The fast canonical dump writes exactly the bytes of the reference ``json.dumps`` serialisation, so hashes
(and the chain) never depend on which path produced them."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain.canonical import dump_canonical

_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


def _reference(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


@settings(max_examples=500)
@given(_PLAIN)
def test_fast_dump_equals_the_reference_bytes(value: object) -> None:
    assert dump_canonical(value) == _reference(value)


def test_non_ascii_and_del_take_the_reference_path() -> None:
    assert dump_canonical({"memo": "Rp 25.000 — lunas", "k": "\x7f"}) == _reference(
        {"memo": "Rp 25.000 — lunas", "k": "\x7f"}
    )
