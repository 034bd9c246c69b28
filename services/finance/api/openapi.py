"""The read API's OpenAPI document, generated from its routers: committed as ``schemas/openapi/finance.json`` by
``karya schemas gen`` and checked against the code by ``karya schemas check`` and a unit test."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

TITLE = "Karya finance workspace — read API"
DESCRIPTION = (
    "Read-only views of the ledger for auditors and treasurers, in the signed-in user's lapas (enforced by "
    "PostgreSQL row-level security). Money is integer rupiah; times are ISO 8601 with a zone. Sign in at /login: "
    "the API reads the session cookie."
)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of every ``/api/v1`` route of :func:`services.finance.app.api_routers`."""
    from services.finance.app import api_routers

    app = FastAPI()
    for router in api_routers():
        app.include_router(router)
    return get_openapi(title=TITLE, version="1", description=DESCRIPTION, routes=app.routes)
