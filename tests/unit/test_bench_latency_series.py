"""The latency run's per-second series: which seconds of publishing set the tail."""

from __future__ import annotations

from bench.latency import by_second, describe


def test_samples_fall_in_the_second_of_their_publish_time_counted_from_the_first() -> None:
    start = 1_700_000_000.25
    samples = [(start + 0.9, 40.0), (start, 20.0), (start + 0.5, 30.0), (start + 2.1, 500.0), (start + 2.2, 100.0)]
    assert by_second(samples) == [
        {"second": 0, "postings": 3, "p50_ms": 30.0, "max_ms": 40.0},
        {"second": 2, "postings": 2, "p50_ms": 300.0, "max_ms": 500.0},
    ]


def test_no_samples_make_no_series() -> None:
    assert by_second([]) == []


def test_the_console_line_names_the_slowest_second() -> None:
    hop = {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0}
    lat = {
        "offered_per_s": 1000.0,
        "latency_samples": 5,
        "p50_ms": 30.0,
        "p95_ms": 400.0,
        "p99_ms": 480.0,
        "completion_hops": {"orders": hop, "relay": hop, "ledger": hop},
        "by_second": by_second([(10.0, 20.0), (10.5, 30.0), (12.0, 500.0), (12.1, 100.0), (13.0, 50.0)]),
    }
    assert "slowest second 2 of 3: p50 300 / max 500 ms" in describe(lat)
