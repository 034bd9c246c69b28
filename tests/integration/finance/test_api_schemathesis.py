"""The read API fuzzed by Schemathesis from the committed OpenAPI document (``schemas/openapi/finance.json``):
every operation's requests, positive and negative (values the document refuses), plus the same request with lapas
B's order, inmate, account or entry ids in its path, sent as a signed-in ``auditor_lapas`` of lapas A to the ASGI
app on the real database: no 5xx; no success names lapas B's order, inmate or lapas, and no error names one the
request did not (a 422 echoes its input).

The requests go through F2's signed-in httpx client on its own event loop (``test_api_fuzz.lapas_a_client``): the
app's asyncpg pool lives on that loop, so Schemathesis' own ASGI client (a loop per call) is not used to send.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from tests.integration.finance.test_api_fuzz import _crafted, lapas_a_client, posted
from tests.integration.finance_read_support import LAPAS_B, TwoLapas

__all__ = ["lapas_a_client", "posted"]  # F2's fixtures, used here by name

pytestmark = pytest.mark.integration

DOCUMENT = Path(__file__).resolve().parents[3] / "schemas" / "openapi" / "finance.json"
schema = schemathesis.openapi.from_path(str(DOCUMENT))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def _send(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, case: Case[Any], path_parameters: dict[str, Any]
) -> httpx.Response:
    """``case`` sent with ``path_parameters`` through the signed-in client."""
    path = case.operation.path
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", httpx.URL(path="/" + str(value)).raw_path.decode()[1:] or "x")
    query = {k: v if isinstance(v, list) else str(v) for k, v in (case.query or {}).items()}
    return loop.run_until_complete(client.request(case.method, path, params=query))


@schema.parametrize()
@schema.given(crafted_at=st.integers(0, 5))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_5xx_and_no_row_of_another_lapas(
    case: Case[Any],
    crafted_at: int,
    posted: TwoLapas,
    lapas_a_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient],
) -> None:
    loop, client = lapas_a_client
    generated = dict(case.path_parameters or {})
    crafted = _crafted(posted)
    attempts = [generated]
    if generated:  # the same request aimed at lapas B's rows
        attempts.append(dict.fromkeys(generated, crafted[crafted_at % len(crafted)]))
    for path_parameters in attempts:
        response = _send(loop, client, case, path_parameters)
        assert response.status_code < 500, (case.method, case.operation.path, path_parameters, response.text)
        sent = f"{path_parameters} {case.query}"  # a 4xx may echo the request's own values, nothing else of B
        for secret in (posted.order_b, posted.inmate_b, LAPAS_B):
            if response.is_success or secret not in sent:
                assert secret not in response.text, (response.status_code, case.operation.path, path_parameters)
