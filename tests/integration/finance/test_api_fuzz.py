"""The read API fuzzed from its own OpenAPI document (Hypothesis, no Schemathesis dependency): requests built from
each route's parameters — valid and invalid times, huge and negative numbers, arbitrary text, and the ids of
lapas B's order, inmate and entries — sent as an auditor of lapas A never get a 5xx, and no 200 answer carries a
row of lapas B."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.db.roles import RoleUrls
from services.finance.api.openapi import openapi_document
from tests.integration.finance_auth_support import workspace
from tests.integration.finance_read_support import LAPAS_A, LAPAS_B, TwoLapas, two_lapas

pytestmark = pytest.mark.integration

ROUTES = [(path, op.get("parameters", [])) for path, ops in openapi_document()["paths"].items() for op in ops.values()]


@pytest.fixture(scope="module")
async def posted(database: RoleUrls, admin_db_url: str) -> TwoLapas:
    """Orders of two lapas on the session database."""
    return await two_lapas(database, admin_db_url)


@pytest.fixture(scope="module")
def lapas_a_client(
    posted: TwoLapas, database: RoleUrls
) -> Iterator[tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]]:
    """A signed-in auditor of lapas A, on an event loop of its own (Hypothesis runs the examples synchronously)."""
    loop = asyncio.new_event_loop()
    made = workspace(database.finance)
    ws = loop.run_until_complete(made.__aenter__())
    user, password = loop.run_until_complete(ws.account("auditor_lapas", LAPAS_A))
    client = loop.run_until_complete(ws.signed_in(user, password))
    try:
        yield loop, client
    finally:
        loop.run_until_complete(made.__aexit__(None, None, None))
        loop.close()


def _crafted(posted: TwoLapas) -> list[str]:
    """Ids of lapas B an attacker in lapas A would try."""
    return [
        posted.order_b,
        posted.inmate_b,
        f"payout:{posted.inmate_b}",
        f"revenue:sales:{LAPAS_B}",
        f"liability:inmate_savings:{posted.inmate_b}",
        *(str(s) for s in posted.entries_b),
    ]


def _values(schema: dict[str, Any], crafted: list[str]) -> st.SearchStrategy[str]:
    """Text values for a parameter of ``schema``: what it accepts, what it should refuse, and crafted ids."""
    if "anyOf" in schema:
        return st.one_of(*(_values(s, crafted) for s in schema["anyOf"] if s.get("type") != "null"))
    junk = st.one_of(st.text(max_size=40), st.sampled_from(["\x00", "a\x00b", "\ud7ff", "%", "_", "\\"]))
    if schema.get("type") == "integer":
        return st.one_of(st.integers(-(2**65), 2**65).map(str), st.sampled_from(crafted), junk)
    if schema.get("format") == "date-time":
        aware = st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())
        return st.one_of(aware, st.datetimes().map(lambda t: t.isoformat()), junk)
    return st.one_of(st.sampled_from(crafted), junk)


def _request(draw: st.DrawFn, crafted: list[str]) -> tuple[str, dict[str, str]]:
    path, parameters = draw(st.sampled_from(ROUTES))
    query: dict[str, str] = {}
    for p in parameters:
        value = draw(_values(p["schema"], crafted))
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", quote(value, safe="") or "x")
        elif draw(st.booleans()):
            query[p["name"]] = value
    return path, query


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_5xx_and_no_row_of_another_lapas(
    data: st.DataObject, posted: TwoLapas, lapas_a_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]
) -> None:
    loop, client = lapas_a_client
    crafted = _crafted(posted)
    path, query = data.draw(st.composite(lambda draw: _request(draw, crafted))())

    response = loop.run_until_complete(client.get(path, params=query))

    assert response.status_code < 500, (path, query, response.text)
    if response.status_code == 200:
        for secret in (posted.order_b, posted.inmate_b, LAPAS_B):
            assert secret not in response.text, (path, query)
