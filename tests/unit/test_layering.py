"""Kafka stays in ``infra/``: no service, CLI or simulator module imports aiokafka or FastStream's Kafka types.

(``karya/docs.py`` uses FastStream's application and AsyncAPI generator, not its Kafka types: it passes.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("services", "karya", "sim")
FORBIDDEN = ("aiokafka", "faststream.kafka")


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


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_no_module_outside_infra_imports_kafka_clients() -> None:
    files = [p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))]
    assert files
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if _forbidden(n)) for p in files}
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_check_sees_kafka_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import aiokafka.structs\nfrom faststream import kafka\nfrom faststream import FastStream\n")
    assert sorted(n for n in _imports(module) if _forbidden(n)) == ["aiokafka.structs", "faststream.kafka"]
