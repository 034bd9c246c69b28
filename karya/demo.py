"""`karya demo`: the whole system on this machine, end to end, with a readable summary.

Resets the demo's own database (``karya_demo`` under ``make demo``, never the stack's shared ``karya``; see
:mod:`karya.demo_db`), loads the demo catalogue and split policies, starts every service as its own
process (recorded by pid), pushes a marketplace day of orders through, waits until every event is processed,
prints the summary and the local URLs, and keeps running until Ctrl-C (``--once``: exits when drained and
prints one JSON line of counters taken from the database and the broker).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import typer
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from sqlalchemy.engine import make_url

from infra.db.engine import make_engine
from infra.db.migrate import upgrade_to_head_async
from infra.db.roles import (
    FINANCE,
    FINANCE_URL_ENV,
    GATEWAY,
    GATEWAY_URL_ENV,
    bootstrap_database,
    drop_database,
    passwords_from_env,
    url_as,
)
from infra.db.unit_of_work import Database, UnitOfWork
from infra.environment import ROOT, state_dir
from infra.messaging.admin import broker_counts, ensure_topics
from infra.messaging.relay import make_producer
from infra.messaging.topics import BASE_NAMES, topic_name
from karya.demo_db import SharedDatabaseRefused, demo_database, demo_urls, write_demo_env
from karya.demo_report import database_counts, ledger_figures, summary_tables, wait_pipeline_drained
from karya.demo_sim import apply_env, demo_secrets, marketplace_env, simulated_day, simulated_marketplaces
from karya.processes import (
    ServiceProcess,
    free_port,
    interrupt_on_sigterm,
    start_service,
    stop_all,
    wait_until_ready,
)
from services.finance.app import SCHEMA as FINANCE_SCHEMA
from services.finance.auth.demo import create_demo_users
from services.ledger.adapters.policy_repo import store_policies, store_tax_settings
from services.ledger.app import SCHEMA as LEDGER_SCHEMA
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.tax_file import parse_tax_settings
from services.ledger.statements import all_lapas_totals
from services.orders.adapters.catalogue_repo import load_catalogue as load_catalogue_db
from services.orders.app import SCHEMA as ORDERS_SCHEMA
from services.orders.catalogue import Catalogue, load_catalogue

console = Console(stderr=True)
CATALOGUE = ROOT / "deploy" / "demo" / "catalogue.yaml"
POLICIES = ROOT / "deploy" / "demo" / "policies.yaml"
FINANCE_USERS = "finance-users.txt"
"""The demo accounts of the finance workspace (one per role) and their passwords, under the state dir (0600)."""


def demo(
    orders: int = typer.Option(2000, "--orders", help="Orders in the marketplace day."),
    once: bool = typer.Option(False, "--once", help="Exit when drained; last line is a JSON summary."),
    seed: int = typer.Option(7, "--seed"),
    timeout_s: float = typer.Option(900, "--timeout", help="Give up waiting for the drain after this long."),
    source: str = typer.Option(
        "simulator",
        "--source",
        help="simulator: signed webhooks from the marketplace simulator through the gateway; "
        "direct: canonical events straight into Kafka (no gateway).",
    ),
    database: str | None = typer.Option(
        None,
        "--database",
        envvar="KARYA_DEMO_DATABASE",
        help="The database the demo drops and recreates (default: karya_demo when DATABASE_URL names the "
        "stack's shared karya database, else DATABASE_URL's; never karya).",
    ),
) -> None:
    """Run the demo (see the module docstring)."""
    if source not in ("simulator", "direct"):
        console.print("[red]--source must be simulator or direct")
        raise typer.Exit(2)
    for name in ("DATABASE_URL", "KARYA_MIGRATOR_URL", "KARYA_DB_ADMIN_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        if not os.environ.get(name):
            console.print(f"[red]{name} is not set: run `make demo` (it starts the stack and sources .local/stack.env)")
            raise typer.Exit(2)
    try:
        database = demo_database(os.environ["DATABASE_URL"], database)
    except SharedDatabaseRefused as exc:
        console.print(f"[red]{exc}: choose another --database")
        raise typer.Exit(2) from exc
    started = time.monotonic()
    prefix = f"demo{int(time.time())}."
    urls = demo_urls(os.environ, database)
    os.environ.update(urls)  # everything below (and every service started) works in the demo's database
    env = {"KARYA_TOPIC_PREFIX": prefix, **urls}
    catalogue = load_catalogue(CATALOGUE)
    services = ["orders", "ledger", "finance"]
    # The finance workspace connects as its own role on the demo's database, with a secret of this run.
    env |= {
        FINANCE_URL_ENV: url_as(os.environ["DATABASE_URL"], FINANCE, passwords_from_env()),
        "KARYA_FINANCE_SECRET_KEY": secrets.token_urlsafe(32),
    }
    gateway_port = sim_port = 0
    if source == "simulator":
        gateway_port, sim_port = free_port(), free_port()
        env |= demo_secrets() | marketplace_env(catalogue, sim_port, gateway_port)
        apply_env(env)
        # The gateway connects as its own role, on the demo's database (never another one set in the shell).
        env[GATEWAY_URL_ENV] = url_as(os.environ["DATABASE_URL"], GATEWAY, passwords_from_env())
        services.append("gateway")
    asyncio.run(_prepare(prefix))
    log_dir = state_dir() / "demo" / prefix.rstrip(".")
    shell = {k: v for k, v in env.items() if k in urls or k in (GATEWAY_URL_ENV, "KARYA_TOPIC_PREFIX")}
    demo_env = write_demo_env(state_dir() / "demo" / "demo.env", shell | {"KAFKA_BOOTSTRAP_SERVERS": _kafka()})
    procs: list[ServiceProcess] = []

    def start_all() -> None:
        for service in services:
            port = gateway_port if service == "gateway" else None
            procs.append(start_service(service, ["karya.cli", "serve", service], env, log_dir, port=port))
        console.print(
            f"services started: {', '.join(f'{p.name} (pid {p.pid}, :{p.port})' for p in procs)}; logs in {log_dir}"
        )

    interrupt_on_sigterm()
    try:

        async def afterwards(result: dict[str, Any]) -> None:
            """Report; without --once keep serving until Ctrl-C; then stop the services (by pid)."""
            result["elapsed_s"] = round(time.monotonic() - started, 1)
            _print_summary(result, procs, demo_env)
            try:
                if once:
                    summary = result["counters"] | {"elapsed_s": result["elapsed_s"], "topic_prefix": prefix}
                    summary["lapas_totals"] = result["lapas_totals"]  # the per-lapas reports' figures, as printed
                    print(json.dumps(summary), flush=True)
                    return
                console.print("[bold]running; Ctrl-C to stop[/bold]")
                while all(p.popen.poll() is None for p in procs):  # noqa: ASYNC110 - child processes: no event
                    await asyncio.sleep(1)
            finally:
                await asyncio.to_thread(stop_all, procs)  # the simulator, on this loop, answers meanwhile

        if source == "simulator":
            day = _drive_simulated(prefix, catalogue, orders, seed, procs, sim_port, timeout_s, start_all, afterwards)
            asyncio.run(day)
        else:
            start_all()
            asyncio.run(wait_until_ready(procs))
            asyncio.run(afterwards(asyncio.run(_drive(prefix, orders, seed, procs, timeout_s))))
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stop_all(procs)


async def _prepare(prefix: str) -> None:
    """Fresh demo database (local stack only), catalogue, policies, topics."""
    admin = os.environ["KARYA_DB_ADMIN_URL"]
    url = make_url(os.environ["DATABASE_URL"])
    database = url.database or "karya"
    if make_url(admin).host in ("127.0.0.1", "localhost"):  # only ever reset the local stack's database
        console.print(
            f"resetting the demo database {database!r} on {url.host}:{url.port} (dropped and created again; "
            "the stack's 'karya' database is left alone)"
        )
        await drop_database(admin, database)
    else:
        console.print(f"demo database {database!r} on {url.host}:{url.port} (not local: kept, migrated)")
    await bootstrap_database(admin, passwords_from_env(), database)
    await upgrade_to_head_async(os.environ["KARYA_MIGRATOR_URL"])
    engine = make_engine(os.environ["DATABASE_URL"], pool_size=1)
    try:
        async with engine.begin() as conn:
            report = await load_catalogue_db(UnitOfWork(conn, ORDERS_SCHEMA), load_catalogue(CATALOGUE), str(CATALOGUE))
            policy_file = yaml.safe_load(POLICIES.read_text())
            new, _ = await store_policies(UnitOfWork(conn, LEDGER_SCHEMA), parse_policies(policy_file, str(POLICIES)))
            new_tax, _ = await store_tax_settings(
                UnitOfWork(conn, LEDGER_SCHEMA), parse_tax_settings(policy_file, str(POLICIES))
            )
        lapas = load_catalogue(CATALOGUE).lapas[0].lapas_id
        await create_demo_users(Database(engine, FINANCE_SCHEMA), state_dir() / FINANCE_USERS, lapas)
    finally:
        await engine.dispose()
    console.print(
        f"catalogue: {len(report.new_batches)} batches, {report.units_received} units; {new} split policies, "
        f"{new_tax} tax settings"
    )
    await ensure_topics(
        os.environ["KAFKA_BOOTSTRAP_SERVERS"], [topic_name(b, prefix) for b in BASE_NAMES], partitions=6
    )


async def _drive(prefix: str, orders: int, seed: int, procs: list[ServiceProcess], timeout_s: float) -> dict[str, Any]:
    """Publish the day's lifecycles with a progress bar, then wait until everything is processed."""
    from sim.loadgen import interleave, lifecycles

    messages = interleave(list(lifecycles(load_catalogue(CATALOGUE), orders, seed=seed, run_id=f"d{seed}-")))
    producer = make_producer(os.environ["KAFKA_BOOTSTRAP_SERVERS"], "karya-demo")
    await producer.start()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("publishing marketplace events", total=len(messages))
            futures = []
            for m in messages:
                topic = topic_name(m.topic, prefix)  # the loadgen names base topics (this process has no prefix)
                futures.append(await producer.send(topic, m.envelope.to_bytes(), key=m.envelope.subject.encode()))
                if len(futures) >= 1000:
                    await asyncio.gather(*futures)
                    progress.advance(task, len(futures))
                    futures = []
            await asyncio.gather(*futures)
            progress.advance(task, len(futures))
            drained = await _wait_drained(prefix, progress, procs, timeout_s, min_processed=len(messages))
    finally:
        await producer.stop()
    return await _results(prefix, drained, procs)


async def _drive_simulated(
    prefix: str,
    catalogue: Catalogue,
    orders: int,
    seed: int,
    procs: list[ServiceProcess],
    sim_port: int,
    timeout_s: float,
    start_all: Callable[[], None],
    afterwards: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Signed webhooks from the simulator through the gateway; wait until everything is processed; then
    ``afterwards`` (report, hold, stop the services). The simulated marketplaces answer for the gateway's whole
    life: they start before the services and stop after them, so its pollers never meet a refused connection."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    async with simulated_marketplaces(catalogue, sim_port) as simulator:
        start_all()
        await wait_until_ready(procs)
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("marketplace day: webhooks sent", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            sim_counts = await simulated_day(simulator, orders, seed, on_progress)
            # the backstop poller re-checks quiet orders after KARYA_BACKSTOP_MIN_AGE_S: stay stable past that
            drained = await _wait_drained(prefix, progress, procs, timeout_s, stable_s=25.0)
        result = await _results(prefix, drained, procs)
        result["counters"] |= await _webhook_counts(procs)
        result["simulator"] = sim_counts
        await afterwards(result)


async def _webhook_counts(procs: list[ServiceProcess]) -> dict[str, int]:
    """Webhooks as the gateway counted them (its /metrics), not as the simulator meant them."""
    gateway = next(p for p in procs if p.name == "gateway")
    async with httpx.AsyncClient() as client:
        text_ = (await client.get(f"http://127.0.0.1:{gateway.port}/metrics")).text
    sent = rejected = 0
    for family in text_string_to_metric_families(text_):
        for sample in family.samples:
            if sample.name == "karya_gateway_webhooks_total":
                sent += int(sample.value)
                if sample.labels.get("outcome") not in ("accepted", "duplicate"):
                    rejected += int(sample.value)
    return {"webhooks_sent": sent, "webhooks_rejected": rejected}


async def _results(prefix: str, drained: bool, procs: list[ServiceProcess]) -> dict[str, Any]:
    engine = make_engine(os.environ["DATABASE_URL"], pool_size=1)
    try:
        async with engine.connect() as conn:
            counters = await database_counts(conn) | await ledger_figures(conn)
            tables = await summary_tables(conn)
            lapas = await all_lapas_totals(UnitOfWork(conn, LEDGER_SCHEMA), datetime.now(UTC))
    finally:
        await engine.dispose()
    dlq, _ = await broker_counts(os.environ["KAFKA_BOOTSTRAP_SERVERS"], prefix, [])
    counters = {
        "orders": counters["orders"],
        "webhooks_sent": 0,
        "webhooks_rejected": 0,
        **counters,
        "dlq_messages": dlq,
        "drained": drained,
    }
    return {"counters": counters, "tables": tables, "lapas_totals": lapas}


async def _wait_drained(
    prefix: str,
    progress: Progress,
    procs: list[ServiceProcess],
    timeout_s: float,
    *,
    min_processed: int = 0,
    stable_s: float = 2.0,
) -> bool:
    """:func:`wait_pipeline_drained` on the demo database, with a progress line."""
    task = progress.add_task("processing", total=None)

    def show(processed: int, lag: int, pending: int) -> None:
        progress.update(
            task, completed=processed, description=f"processing: {processed} events, lag {lag}, outbox {pending}"
        )

    return await wait_pipeline_drained(
        os.environ["DATABASE_URL"],
        prefix,
        procs,
        timeout_s,
        min_processed=min_processed,
        stable_s=stable_s,
        on_update=show,
    )


def _kafka() -> str:
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]


_TOTALS = (  # (key of services.ledger.domain.summaries.lapas_totals, column)
    ("sales", "sales"),
    ("pnbp_accrued", "PNBP accrued"),
    ("pnbp_deposited", "PNBP deposited"),
    ("premi_accrued", "premi"),
    ("ppn_output", "PPN output"),
    ("ppn_input", "PPN input"),
    ("pph22_creditable", "PPh 22 creditable"),
    ("pph22_expense", "PPh 22 as cost"),
    ("pph22_exempt", "PPh 22 to claim back"),
)


def _print_lapas_totals(totals: dict[str, dict[str, int]]) -> None:
    """Per lapas, the figures of its reports (`karya ledger report …`, every month so far): sales, PNBP accrued and
    deposited, premi accrued, output and input PPN, PPh 22 withheld per treatment — a column per lapas, so the
    figures fit a terminal's width."""
    table = Table("", *(Column(lapas, justify="right") for lapas in totals), title="totals per lapas")
    for key, label in _TOTALS:
        table.add_row(label, *(f"{t[key]:,}" for t in totals.values()))
    console.print(table)


def _print_summary(result: dict[str, Any], procs: list[ServiceProcess], demo_env: Path) -> None:
    for title, rows in result["tables"].items():
        if not rows:
            continue
        table = Table(*rows[0].keys(), title=title.replace("_", " "), title_justify="left")
        for row in rows:
            table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
        console.print(table)
    _print_lapas_totals(result["lapas_totals"])
    c = result["counters"]
    console.print(
        f"journal entries {c['journal_entries']:,}; debits {c['trial_balance_debits']:,} = credits "
        f"{c['trial_balance_credits']:,}; unbalanced {c['unbalanced_entries']}; dead letters "
        f"{c['dlq_messages']}; elapsed {result['elapsed_s']} s"
    )
    if "simulator" in result:
        console.print(
            f"simulator intended: {result['simulator']}; gateway counted: sent {c['webhooks_sent']}, "
            f"rejected {c['webhooks_rejected']}"
        )
    for p in procs:
        if p.name == "finance":
            users = state_dir() / FINANCE_USERS
            console.print(f"finance workspace: http://127.0.0.1:{p.port}/ (pid {p.pid}); demo accounts in {users}")
            continue
        console.print(f"{p.name}: http://127.0.0.1:{p.port}/readyz  /metrics  (pid {p.pid})")
    console.print(
        f"try (in the demo's database and topics): source {demo_env}; "
        "karya stock show --json | karya ledger trial-balance | karya ledger verify"
    )
