"""Kafka stays in ``infra/``: no service, CLI or simulator module imports aiokafka or FastStream's Kafka types;
and use cases are transport-free: only a service's entry points (``app.py``, ``cli.py``) see the consumer's
``InboundEvent`` / ``Rejection`` and the ``Delivery`` a record came in, use cases take envelopes and a unit of work.

(``karya/docs.py`` uses FastStream's application and AsyncAPI generator, not its Kafka types: it passes.)

And wiring comes from the composition roots: no module of ``services/`` or ``karya/`` but the roots creates an
engine or reads the process settings; no module but a service's own names its schema (the others get it from the
topology, ``karya.services.SERVICES``, handed down by a root).

And a service imports no other service's modules: only its own and the shared packages (``services/contracts``,
``services/presentation``), which import no service; the finance workspace reads the ledger's books with the
ledger's own modules.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from karya.services import SERVICES, WORKSPACES

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("services", "karya", "sim")
FORBIDDEN = ("aiokafka", "faststream.kafka")
TRANSPORT = ("infra.messaging.consumer", "infra.messaging.delivery")  # the Kafka entry point's vocabulary
ENTRY_POINTS = ("app.py", "cli.py")
NOT_USE_CASES = ("adapters", "migrations")
PENDING: set[str] = set()  # services whose use cases still see the consumer's types (none: all moved)
# The shared packages of services/: what every service may import (event shapes and vocabulary, how numbers, times
# and words are shown to people). They import no service.
SHARED = ("contracts", "presentation")


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
    """Every module of ``services/<svc>/`` but its entry points, adapters and migrations (and the shared packages)."""
    return [
        p
        for p in sorted((ROOT / "services").rglob("*.py"))
        if p.relative_to(ROOT).parts[1] not in SHARED
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


# Composition roots: the only modules of services/ and karya/ that create an engine or read the process settings
# (database URLs, Kafka settings). Every other module is handed them (an engine, a Database or UnitOfWork, topics).
# The CLI's root is infra.cli_root (infra is not checked here); the demo is a process of its own with its own root.
ROOT_CALLS = frozenset(
    {"make_engine", "KafkaSettings", "kafka_settings", "DatabaseSettings", "database_settings", "gateway_database_url"}
)
COMPOSITION_ROOTS = frozenset(
    {"karya/services.py", "karya/docs.py", "karya/demo.py", "karya/demo_sim.py", "karya/demo_report.py"}
)


def _calls(path: Path) -> set[str]:
    """The names of the functions and classes ``path`` calls (``f(...)`` and ``m.f(...)`` both count as ``f``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def test_only_the_composition_roots_create_engines_or_read_process_settings() -> None:
    files = [p for layer in ("services", "karya") for p in sorted((ROOT / layer).rglob("*.py"))]
    offenders = {
        str(p.relative_to(ROOT)): sorted(_calls(p) & ROOT_CALLS)
        for p in files
        if str(p.relative_to(ROOT)) not in COMPOSITION_ROOTS
    }
    assert {p: names for p, names in offenders.items() if names} == {}
    assert all((ROOT / p).exists() for p in COMPOSITION_ROOTS), "a composition root moved: update the list"


def test_the_root_check_sees_engines_and_settings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from infra import settings\nsettings.kafka_settings()\nmake_engine('u')\nKafkaSettings\n")
    assert _calls(module) & ROOT_CALLS == {"kafka_settings", "make_engine"}


# Schemas: a service names its own schema once (SCHEMA in its app module) and its modules use it; every other module
# is handed the schema it works on (a UnitOfWork, a Database) or asks the topology for it (CliRoot.schema, the
# demo report's topology_schemas). The demo and the simulator's in-process pipeline are processes of their own.
# karya/services.py is the topology itself: its names of services and workspaces are their schemas' names.
SCHEMA_ROOTS = frozenset({"karya/demo.py", "karya/demo_sim.py", "sim/pipeline_env.py", "karya/services.py"})
# The workspaces (karya.services.WORKSPACES: the finance web app) are checked like services, with their own schema.
SCHEMAS = {service.schema for service in SERVICES.values()} | {
    str(importlib.import_module(app).SCHEMA) for app in WORKSPACES.values()
}
# Modules that still name another service's schema (docs/architecture.md, "Not yet"): the test fails when one no
# longer does (take it off the list).
SCHEMA_PENDING: dict[str, list[str]] = {
    # ReadSchemas defaults the ledger's schema for callers that hand none (the tests' create_app without schemas).
    "services/finance/scope.py": ["ledger: str = 'ledger'"],
}


def _sql_naming(schemas: set[str]) -> re.Pattern[str]:
    """SQL text that qualifies a table (``FROM ledger.x``, ``JOIN``, ``INTO``, ``UPDATE``, ``TABLE``) or calls a
    function (``gateway.f(``) with one of ``schemas``."""
    names = "|".join(sorted(schemas))
    return re.compile(rf"(?i:\b(?:from|join|into|update|table)\s+)({names})\.\w+|(?<![\w.-])({names})\.\w+\(")


def _other_schemas_named(path: Path, own: str | None) -> list[str]:
    """What ``path`` names of a schema not its service's (``own``): SQL in its string constants, a name bound to
    the schema's name (``LEDGER_SCHEMA = "ledger"``), ``SCHEMA`` imported from another service's module
    (its app module, or where the app module takes it from: ``services.ledger.names``)."""
    sql = _sql_naming(SCHEMAS - {own} if own else SCHEMAS)
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [m.group(0) for m in sql.finditer(node.value)]
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            if node.value.value in SCHEMAS - {own}:
                found.append(f"{ast.unparse(node).split(' =')[0]} = {node.value.value!r}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("services."):
            service = node.module.split(".")[1]  # its app module or wherever it names SCHEMA (the ledger's names)
            if service != own and any(alias.name == "SCHEMA" for alias in node.names):
                found.append(f"from {node.module} import SCHEMA")
    return found


def _service_of(path: Path) -> str | None:
    """The service a module belongs to (``services/<svc>/…``), else None."""
    return path.parts[1] if path.parts[0] == "services" else None


# What a workspace may import of a service beside the shared packages: the finance workspace reads the ledger's books
# with the ledger's own rules (its domain, reports and repositories).
WORKSPACE_READS: dict[str, tuple[str, ...]] = {"finance": ("ledger",)}


def _other_services_imported(path: Path, own: str) -> list[str]:
    """The modules of ``services/`` that ``path`` (a module of ``services/<own>/``) imports but its own, the shared
    packages' and, for a workspace, those of the services it reads."""
    allowed = {own, *SHARED, *WORKSPACE_READS.get(own, ())}
    return sorted(n for n in _imports(path) if n.startswith("services.") and n.split(".")[1] not in allowed)


def test_no_service_imports_another_services_modules() -> None:
    units = {*SERVICES, *WORKSPACES, *SHARED}
    files = [p for p in sorted((ROOT / "services").rglob("*.py")) if p.relative_to(ROOT).parts[1] in units]
    assert {p.relative_to(ROOT).parts[1] for p in files} == units
    assert set(WORKSPACE_READS) <= set(WORKSPACES) and all(set(r) <= set(SERVICES) for r in WORKSPACE_READS.values())
    imported = {str(p.relative_to(ROOT)): _other_services_imported(p, p.relative_to(ROOT).parts[1]) for p in files}
    assert {p: names for p, names in imported.items() if names} == {}
    unknown = {p.name for p in (ROOT / "services").iterdir() if p.is_dir() and p.name != "__pycache__"} - units
    assert unknown == set(), "a package of services/ is neither a service, a workspace nor shared: list it"


def test_the_service_import_check_sees_other_services(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from services.finance.presentation.exports import Column\n"
        "import services.orders.domain.lifecycle\n"
        "from services import gateway\n"
        "from services.ledger.domain import accounts\n"  # its own
        "from services.contracts.zones import WIB\n"
        "from services.presentation.money import rupiah\n"
    )
    assert _other_services_imported(module, "ledger") == [
        "services.finance.presentation.exports",
        "services.finance.presentation.exports.Column",
        "services.gateway",
        "services.orders.domain.lifecycle",
    ]
    assert _other_services_imported(module, "finance") == ["services.gateway", "services.orders.domain.lifecycle"]


def test_no_module_names_another_services_schema() -> None:
    files = [
        p.relative_to(ROOT)
        for layer in ("services", "karya", "infra", "sim")
        for p in sorted((ROOT / layer).rglob("*.py"))
        if "migrations" not in p.parts and str(p.relative_to(ROOT)) not in SCHEMA_ROOTS
    ]
    units = {*SERVICES, *WORKSPACES, *SHARED}
    checked = [p for p in files if p.parts[0] != "services" or p.parts[1] in units]
    assert len(SCHEMAS) == len(SERVICES) + len(WORKSPACES) >= 4 and len(checked) > 100
    named = {str(p): _other_schemas_named(ROOT / p, _service_of(p)) for p in checked}
    assert {p: n for p, n in named.items() if n} == SCHEMA_PENDING
    assert all((ROOT / p).exists() for p in SCHEMA_ROOTS), "a schema root moved: update the list"


def test_the_schema_check_sees_sql_and_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from services.ledger.app import SCHEMA\n"
        "from services.gateway.names import SCHEMA as GATEWAY\n"
        "Q = 'SELECT e.* FROM ledger.journal_entries e JOIN orders.orders o ON true'\n"
        "R = f'SELECT {s}.x FROM {s}.y'\n"  # the schema handed in: fine
        "T = 'ledger.entries'  # a topic, not SQL\n"
        'S = "SELECT gateway.redacted_envelope(payload) FROM t"\n'
        "LEDGER_SCHEMA = 'ledger'\n"
        "OWN: str = 'orders'\n"
    )
    assert sorted(_other_schemas_named(module, "orders")) == [
        "FROM ledger.journal_entries",
        "LEDGER_SCHEMA = 'ledger'",
        "from services.gateway.names import SCHEMA",
        "from services.ledger.app import SCHEMA",
        "gateway.redacted_envelope(",
    ]
