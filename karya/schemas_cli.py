"""``karya schemas gen|check``: JSON Schemas of the envelope and every event type, AsyncAPI, and the finance
workspace's OpenAPI document (``schemas/openapi/finance.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from infra.messaging.envelope import Envelope
from services.contracts.registry import EVENT_TYPES

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"


def generated_files() -> dict[Path, dict[str, Any]]:
    """Every schema file this project commits, by path, as generated from the code."""
    from karya.docs import asyncapi_document
    from services.finance.api.openapi import openapi_document

    files: dict[Path, dict[str, Any]] = {
        SCHEMAS_DIR / "envelope.schema.json": _with_id(Envelope.model_json_schema(), "envelope"),
        SCHEMAS_DIR / "asyncapi.json": asyncapi_document(),
        SCHEMAS_DIR / "openapi" / "finance.json": openapi_document(),
    }
    for type_name, model in sorted(EVENT_TYPES.items()):
        files[SCHEMAS_DIR / "events" / f"{type_name}.schema.json"] = _with_id(model.model_json_schema(), type_name)
    return files


def _with_id(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"urn:karya:{name}", **schema}


def render(doc: dict[str, Any]) -> str:
    """The committed text of a schema document (stable key order, trailing newline)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def drift() -> list[str]:
    """Paths whose committed text differs from the code, plus stray event schemas."""
    files = generated_files()
    problems = [
        str(p.relative_to(SCHEMAS_DIR)) for p, doc in files.items() if not p.exists() or p.read_text() != render(doc)
    ]
    events_dir = SCHEMAS_DIR / "events"
    if events_dir.is_dir():
        problems += [f"stray: {p.name}" for p in events_dir.glob("*.json") if p not in files]
    return problems


def register(schemas_app: typer.Typer) -> None:
    """Attach ``gen`` and ``check`` to the ``schemas`` sub-app."""

    @schemas_app.command("gen")
    def gen() -> None:
        """Write schemas/ from the code."""
        events_dir = SCHEMAS_DIR / "events"
        events_dir.mkdir(parents=True, exist_ok=True)
        files = generated_files()
        for stray in events_dir.glob("*.json"):
            if stray not in files:
                stray.unlink()
        for path, doc in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(doc))
        typer.echo(f"wrote {len(files)} schema files under {SCHEMAS_DIR}")

    @schemas_app.command("check")
    def check() -> None:
        """Exit non-zero when schemas/ drifted from the code."""
        problems = drift()
        if problems:
            typer.secho("schemas drifted (run `make schemas`): " + ", ".join(problems), fg="red", err=True)
            raise typer.Exit(1)
        typer.echo("schemas match the code")


schemas_app = typer.Typer(help="Event contracts (JSON Schema, AsyncAPI).", no_args_is_help=True)
register(schemas_app)
