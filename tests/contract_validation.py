"""Validate published bytes against the committed JSON Schemas in schemas/ (not against the pydantic models)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    path = SCHEMAS / ("envelope.schema.json" if name == "envelope" else f"events/{name}.schema.json")
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate_published(raw: bytes) -> dict[str, Any]:
    """Raise ``jsonschema.ValidationError`` unless ``raw`` is a valid envelope whose data fits its type."""
    doc: dict[str, Any] = json.loads(raw)
    _validator("envelope").validate(doc)
    _validator(doc["type"]).validate(doc["data"])
    return doc
