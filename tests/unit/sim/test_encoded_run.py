"""The benchmark's chunked encoding publishes exactly what encoding the whole run at once would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sim.pipeline_env import PackedWires, Wire, encode_all, encoded_run, messages_for

_MINTED = ("event_id", "correlation_id", "time")  # made when an envelope is built: differ between two builds


def content(wire: Wire) -> tuple[str, bytes, dict[str, Any]]:
    envelope = json.loads(wire.value)
    return wire.topic, wire.key, {k: v for k, v in envelope.items() if k not in _MINTED}


def test_chunked_encoding_gives_the_same_events_in_the_same_order() -> None:
    whole = encode_all("p.", messages_for(230, 7, "r-"))
    run = encoded_run(230, 7, "r-", "p.", chunk=120)  # rounded down to 100: three chunks, the last partial
    assert [content(w) for w in run.wires] == [content(w) for w in whole]
    assert run.order_events == sum(1 for w in whole if w.topic == "p.marketplace.order-events")
    assert 0 < run.order_events < len(whole)


def test_packed_wires_read_back_as_the_wires_packed() -> None:
    whole = encode_all("p.", messages_for(60, 7, "r-"))
    packed = PackedWires()
    for start in range(0, len(whole), 37):  # chunks of unequal contents, the last partial
        packed.extend(whole[start : start + 37])
    packed.extend([])
    assert len(packed) == len(whole)
    assert list(packed) == whole
    assert [packed[i] for i in range(len(whole))] == whole
    assert packed[-1] == whole[-1] and packed[-len(whole)] == whole[0]
    assert packed[30:80] == whole[30:80] and packed[::7] == whole[::7]
    with pytest.raises(IndexError):
        packed[len(whole)]
    with pytest.raises(IndexError):
        packed[-len(whole) - 1]
