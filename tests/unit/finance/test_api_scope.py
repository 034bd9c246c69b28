"""The scope a viewer's transactions run in: one lapas, or every lapas — never an empty or wildcard lapas."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.finance.api.params import sequence_cursor
from services.finance.scope import ALL_LAPAS, ScopeError, StaticViewer, scope_of


def test_a_viewer_without_a_lapas_sees_every_lapas() -> None:
    assert scope_of(StaticViewer("pusat", "auditor_pusat", None)) == ALL_LAPAS


@given(st.from_regex(r"[a-z][a-z0-9_-]{0,30}", fullmatch=True))
def test_a_viewer_of_one_lapas_is_scoped_to_it(lapas: str) -> None:
    assert scope_of(StaticViewer("ani", "auditor_lapas", lapas)) == lapas


@pytest.mark.parametrize("lapas", ["", "   ", "*"])
def test_a_lapas_that_would_mean_nothing_or_everything_is_refused(lapas: str) -> None:
    with pytest.raises(ScopeError):
        scope_of(StaticViewer("ani", "auditor_lapas", lapas))


def test_cursors_are_the_sequences_this_api_gave() -> None:
    from fastapi import HTTPException

    assert sequence_cursor(None) == 0
    assert sequence_cursor("42") == 42
    for bad in ("-1", "x", "1e3", "9" * 19):
        with pytest.raises(HTTPException) as caught:
            sequence_cursor(bad)
        assert caught.value.status_code == 422
        detail: list[dict[str, object]] = caught.value.detail  # type: ignore[assignment]
        assert detail[0]["loc"] == ["query", "cursor"]
