"""The ledger-only run's figures (issue 19): its window's rates and CPU per line, and ``scale_2x``."""

from __future__ import annotations

from bench.ledger_only import interleaved, scale_ratio, summary_keys, window_figures


def test_window_rates_and_cpu_per_line() -> None:
    figures = window_figures(replicas=2, lines=90_000, events=15_000, cpu_s=2.7, start=1000.0, end=1006.0, steady=True)
    assert figures == {
        "ledger_replicas": 2,
        "ledger_lines": 90_000,
        "ledger_events": 15_000,
        "seconds": 6.0,
        "ledger_cpu_us_per_line": 30.0,
        "ledger_lines_per_s": 15_000.0,
        "ledger_events_per_s": 2_500.0,
        "steady": True,
    }


def test_a_window_with_no_line_has_no_rate() -> None:
    figures = window_figures(replicas=1, lines=0, events=0, cpu_s=0.5, start=5.0, end=5.0, steady=False)
    assert (figures["ledger_lines_per_s"], figures["ledger_events_per_s"], figures["ledger_cpu_us_per_line"]) == (
        None,
        None,
        None,
    )


def test_scale_is_the_median_of_two_over_the_median_of_one() -> None:
    assert scale_ratio([10_000.0, 12_000.0, 11_000.0], [9_000.0, 13_200.0, 12_100.0]) == 1.1
    assert scale_ratio([10_000.0], [16_000.0]) == 1.6


def test_no_scale_without_a_rate_on_both_sides() -> None:
    assert scale_ratio([None], [16_000.0]) is None
    assert scale_ratio([10_000.0], []) is None


def test_runs_alternate_which_side_goes_first() -> None:
    assert interleaved(1) == [1, 2]
    assert interleaved(3) == [1, 2, 2, 1, 1, 2]


def test_summary_keys_give_medians_per_process_count() -> None:
    def run(n: int, rate: float, cpu: float) -> dict[str, float | int]:
        return {
            "ledger_replicas": n,
            "ledger_lines_per_s": rate,
            "ledger_events_per_s": rate / 6,
            "ledger_cpu_us_per_line": cpu,
        }

    result = {
        "orders": 5000,
        "scale_2x": 0.95,
        "runs": [run(1, 12_000, 30), run(2, 11_400, 34), run(2, 11_600, 36), run(1, 12_400, 32)],
    }
    keys = summary_keys(result)
    assert keys["scale_2x"] == 0.95
    assert keys["ledger_only"]["orders"] == 5000
    assert keys["ledger_only"]["by_processes"]["1"] == {
        "ledger_lines_per_s": 12_200.0,
        "ledger_events_per_s": 2_033.3,
        "ledger_cpu_us_per_line": 31.0,
    }
    assert keys["ledger_only"]["by_processes"]["2"]["ledger_lines_per_s"] == 11_500.0
    assert summary_keys(None) == {"scale_2x": None}
