"""The finance workspace's ``/metrics`` on the real database: each answered request is counted under its route
template (one series for every entry id) with its method and status class, and timed; ``/metrics`` itself is
not counted."""

from __future__ import annotations

import re

import pytest

from infra.db.roles import RoleUrls
from tests.integration.finance_auth_support import workspace

pytestmark = pytest.mark.integration


def _value(exposition: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` of a text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in exposition.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_requests_are_counted_by_route_template_and_status_class(database: RoleUrls) -> None:
    async with workspace(database.finance) as ws:
        user, password = await ws.account("auditor_pusat")
        client = await ws.signed_in(user, password)
        for sequence in (999999991, 999999992):
            assert (await client.get(f"/api/v1/entries/{sequence}")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
        await client.get("/metrics")
        answer = await client.get("/metrics")

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    entry = {"route": "/api/v1/entries/{sequence}", "method": "GET"}
    assert _value(text, "karya_finance_requests_total", **entry, status="4xx") == 2
    assert _value(text, "karya_finance_requests_total", route="/healthz", method="GET", status="2xx") == 1
    assert _value(text, "karya_finance_request_seconds_count", route="/api/v1/entries/{sequence}") == 2
    assert "999999991" not in text, "ids never become labels"
    assert 'route="/metrics"' not in text
