"""The finance read API's committed OpenAPI document is the one the code generates, and says what clients rely
on: integer rupiah, 422 on bad input, 404 on what is not in scope, and no route outside ``/api/v1``."""

from __future__ import annotations

import json
from typing import Any

from karya.schemas_cli import SCHEMAS_DIR, render
from services.finance.api.openapi import openapi_document

COMMITTED = SCHEMAS_DIR / "openapi" / "finance.json"


def test_the_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == render(openapi_document()), "run `karya schemas gen` and commit schemas/"


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["components"]["schemas"][name]
    return found


def test_money_is_integer_rupiah_everywhere() -> None:
    doc = json.loads(COMMITTED.read_text())
    money = {"debit", "credit", "balance", "amount", "total_debit", "total_credit", "opening_balance"}
    money |= {"closing_balance", "refunded_gross"}
    seen = 0
    for schema in doc["components"]["schemas"].values():
        for name, prop in schema.get("properties", {}).items():
            if name in money:
                seen += 1
                assert prop.get("type") == "integer", (name, prop)
    assert seen >= 10


def test_every_route_is_a_get_under_api_v1_and_names_its_errors() -> None:
    doc = json.loads(COMMITTED.read_text())
    assert doc["paths"], "the read API has routes"
    for path, operations in doc["paths"].items():
        assert path.startswith("/api/v1/")
        assert set(operations) == {"get"}, path
        responses = operations["get"]["responses"]
        assert "422" in responses, path
        if "{" in path:
            assert "404" in responses, f"{path}: an id of another lapas is answered 404"


def test_times_take_a_zone() -> None:
    doc = json.loads(COMMITTED.read_text())
    params = doc["paths"]["/api/v1/trial-balance"]["get"]["parameters"]
    as_of = next(p for p in params if p["name"] == "as_of")
    assert any(s.get("format") == "date-time" for s in as_of["schema"]["anyOf"])
