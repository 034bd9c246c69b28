"""The ``karya`` command: local stack, database, services, schemas and (per service) domain commands.

The sub-apps live with their service; :data:`SUBCOMMANDS` is the one list of them, and each is imported only when
the command line names it (:mod:`karya.lazy_cli`), so ``karya serve ledger`` does not load the finance workspace
and ``karya --help`` lists every group from the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from karya.lazy_cli import SubCommand, lazy_group

if TYPE_CHECKING:
    from infra.cli_root import CliRoot

SUBCOMMANDS: dict[str, SubCommand] = {
    "demo": SubCommand("karya.demo", "demo", "Run the demo (see the module docstring)."),
    "db": SubCommand("karya.admin_cli", "db_app", "Database roles and migrations."),
    "schemas": SubCommand("karya.schemas_cli", "schemas_app", "Event contracts (JSON Schema, AsyncAPI)."),
    "docs": SubCommand("karya.admin_cli", "docs_app", "Generated documentation."),
    "stack": SubCommand(
        "infra.localstack.cli", "stack_app", "Local Kafka broker + PostgreSQL server for development and tests."
    ),
    "catalogue": SubCommand(
        "services.orders.cli", "catalogue_app", "Product catalogue (lapas, workshops, products, listings, batches)."
    ),
    "stock": SubCommand("services.orders.cli", "stock_app", "Workshop stock."),
    "orders": SubCommand("services.orders.cli", "orders_app", "Orders."),
    "ledger": SubCommand("services.ledger.cli", "ledger_app", "The journal: reports, verification, payouts."),
    "policy": SubCommand("services.ledger.cli", "policy_app", "Revenue split policies."),
    "users": SubCommand(
        "services.finance.auth.cli", "users_app", "Accounts of the finance workspace (`karya serve finance`)."
    ),
    "import": SubCommand("services.gateway.cli", "import_app", "Import past orders from marketplaces that are gone."),
    "shops": SubCommand(
        "services.gateway.shops.cli",
        "app",
        "Shops authorised for the seller APIs (Shopee, TikTok Shop): tokens per shop.",
    ),
    "audit": SubCommand("karya.audit_cli", "audit_app", "Integrity audits across Kafka and the database."),
    "dlq": SubCommand(
        "karya.dlq_cli",
        "dlq_app",
        "Dead letters: list, show, replay, discard (every action audited); parked gateway deliveries.",
    ),
}
"""Every sub-app of ``karya`` but ``serve``, in the order ``karya --help`` lists them: name → where it lives and
its help (the same as the sub-app's own, which :mod:`tests.unit.test_cli_lazy` checks)."""

app = typer.Typer(
    help="Karya: order fulfilment and revenue ledger for lapas workshop goods.",
    no_args_is_help=True,
    cls=lazy_group(SUBCOMMANDS),
)


@app.callback()
def _group() -> None:
    """No options of its own: with only ``serve`` registered, a callback keeps ``karya`` a group of commands."""


@app.command("serve")
def serve(
    service: str = typer.Argument(..., help="orders | ledger | gateway | finance"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(
        0, help="HTTP port for /healthz, /readyz, /metrics (0: KARYA_<SERVICE>_PORT, else the service default)."
    ),
) -> None:
    """Run one service process until interrupted (logs: JSON lines on stderr, level from KARYA_LOG_LEVEL)."""
    import uvicorn

    from infra.logging import configure_logging
    from infra.settings import http_port
    from karya.services import build_http_app

    configure_logging(service)
    application = build_http_app(service)
    from services.gateway.edge import serve_options  # header/body deadlines and a connection limit (gateway)

    uvicorn.run(
        application,
        host=host,
        port=port or http_port(service),
        log_level="warning",
        log_config=None,  # uvicorn logs through the root logger configured above (JSON, WARNING and up)
        access_log=False,
        **serve_options(service),
    )


def main() -> None:
    """Console-script entry point."""
    from infra.logging import configure_logging

    configure_logging("karya")  # `karya serve` names its service
    app(prog_name="karya", obj=_cli_root)  # the commands' root, made on first use (infra.cli_root.CliRoot.of)


def _cli_root() -> CliRoot:
    from karya.services import cli_root  # the topology and the process settings: only when a command needs them

    return cli_root()


if __name__ == "__main__":  # pragma: no cover
    main()
