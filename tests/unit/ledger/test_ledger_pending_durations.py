"""`karya ledger pending --older-than`: durations read as the operator writes them; ages shown in two units."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ledger.cli_waiting import format_age, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("0s", timedelta(0)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "d", "1x", "1d 2h", "-1d", "1.5h", "yesterday", "1d!"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (0.9, "0s"), (42, "42s"), (65, "1m 5s"), (3_700, "1h 1m"), (90_000, "1d 1h"), (2 * 86_400, "2d")],
)
def test_ages(seconds: float, shown: str) -> None:
    assert format_age(seconds) == shown
