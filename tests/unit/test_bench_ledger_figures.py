"""The ledger's own figures in ``make bench`` (CPU per journal line, lines per second, processes)."""

from __future__ import annotations

from bench.harness import ledger_figures


def test_cpu_per_line_and_lines_per_second() -> None:
    figures = ledger_figures({"ledger.journal_lines": 200_000}, ledger_cpu_s=4.8, ledger_s=8.0, replicas=2)
    assert figures == {
        "ledger_lines": 200_000,
        "ledger_cpu_us_per_line": 24.0,
        "ledger_lines_per_s": 25_000.0,
        "ledger_replicas": 2,
    }


def test_a_run_that_wrote_no_line_has_no_rate() -> None:
    figures = ledger_figures({}, ledger_cpu_s=1.0, ledger_s=0.0, replicas=1)
    assert (figures["ledger_cpu_us_per_line"], figures["ledger_lines_per_s"]) == (None, None)
