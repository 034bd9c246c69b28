"""Kafka stays in ``infra/``: no service, CLI or simulator module imports aiokafka or FastStream's Kafka types;
and use cases are transport-free: only a service's entry points (``app.py``, ``cli.py``) see the consumer's
``InboundEvent`` / ``Rejection`` and the ``Delivery`` a record came in, use cases take envelopes and a unit of work.

(``karya/docs.py`` uses FastStream's application and AsyncAPI generator, not its Kafka types: it passes.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("services", "karya", "sim")
FORBIDDEN = ("aiokafka", "faststream.kafka")
TRANSPORT = ("infra.messaging.consumer", "infra.messaging.delivery")  # the Kafka entry point's vocabulary
ENTRY_POINTS = ("app.py", "cli.py")
NOT_USE_CASES = ("adapters", "migrations")
PENDING: set[str] = set()  # services whose use cases still see the consumer's types (none: all moved)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` counts as ``a.b`` and ``a.b.c``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _forbidden(name: str, modules: tuple[str, ...] = FORBIDDEN) -> bool:
    return any(name == f or name.startswith(f + ".") for f in modules)


def test_no_module_outside_infra_imports_kafka_clients() -> None:
    files = [p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))]
    assert files
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if _forbidden(n)) for p in files}
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_check_sees_kafka_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import aiokafka.structs\nfrom faststream import kafka\nfrom faststream import FastStream\n")
    assert sorted(n for n in _imports(module) if _forbidden(n)) == ["aiokafka.structs", "faststream.kafka"]


def _use_cases() -> list[Path]:
    """Every module of ``services/<svc>/`` but its entry points, adapters and migrations (and the contracts)."""
    return [
        p
        for p in sorted((ROOT / "services").rglob("*.py"))
        if p.relative_to(ROOT).parts[1] != "contracts"
        and p.name not in ENTRY_POINTS
        and not set(p.relative_to(ROOT).parts) & set(NOT_USE_CASES)
    ]


def test_use_cases_do_not_see_kafka_deliveries() -> None:
    """Fails for an offender in a service that moved, and when a service listed as pending no longer has one
    (take it off the list)."""
    files = _use_cases()
    assert any(p.name == "posting.py" for p in files) and any(p.name == "fulfilment.py" for p in files)
    imported = {p.relative_to(ROOT): sorted(n for n in _imports(p) if _forbidden(n, TRANSPORT)) for p in files}
    offenders = {p: names for p, names in imported.items() if names}
    assert {str(p): names for p, names in offenders.items() if p.parts[1] not in PENDING} == {}
    assert {p.parts[1] for p in offenders} == PENDING, "a pending service is transport-free now: unlist it"
