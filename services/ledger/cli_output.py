"""How the ledger's report commands print: ``--format table|json|csv``, whole lines when not on a terminal.

Tables: Rich with markup and emoji off (an account code such as ``asset:bank:cipinang:main`` holds ``:bank:``, which
Rich would print as an emoji), amounts right-aligned as ``Rp 1.234.567`` with Dr/Cr, times in a named zone; when stdout
is not a terminal the table is as wide as its content, so a report redirected to a file is never cut at 80
columns. CSV: the finance workspace's export (integer rupiah, ISO times with their offset).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.table import Table

from services.presentation.exports import Column, to_csv
from services.presentation.money import Side, rupiah, rupiah_side
from services.presentation.zones import WIB, WIT, WITA, zone_label

_ZONE_NAMES = {"WIB": WIB, "WITA": WITA, "WIT": WIT}
_UNBOUNDED = 100_000  # columns of a console that is not a terminal: nothing is cut or wrapped


class Format(StrEnum):
    """What a report command prints."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FORMAT_OPTION = typer.Option(Format.TABLE, "--format", help="table (default), json or csv.")
JSON_OPTION = typer.Option(False, "--json", help="Same as --format json.")
ZONE_OPTION = typer.Option("WIB", "--tz", help="Zone of the printed times: WIB, WITA, WIT or an IANA name.")


def chosen(fmt: Format, as_json: bool) -> Format:
    """The format asked for; ``--json`` (kept for scripts) wins."""
    return Format.JSON if as_json else fmt


def console() -> Console:
    """A console for stdout now: no markup or emoji; unbounded width unless stdout is a terminal."""
    tty = sys.stdout.isatty()
    return Console(markup=False, emoji=False, highlight=False, width=None if tty else _UNBOUNDED, soft_wrap=not tty)


def zone_of(name: str) -> ZoneInfo:
    """``WIB``/``WITA``/``WIT`` or an IANA zone name as a zone; a clear usage error otherwise."""
    try:
        return ZoneInfo(_ZONE_NAMES.get(name.upper(), name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(f"unknown time zone {name!r} (use WIB, WITA, WIT or e.g. Asia/Makassar)") from exc


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time (UTC when it names no offset); a usage error naming ``option`` otherwise."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{option}: {value!r} is not an ISO 8601 date or time (e.g. 2026-07-01, 2026-07-01T17:00+08:00)"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    """``2026-07-02 09:00:00 WITA``: an instant in ``zone``, the zone named."""
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S ") + zone_label(zone)


def money(amount: int) -> str:
    """``Rp 1.234.567`` (``-Rp …`` below zero)."""
    return rupiah(amount)


def sided(balance: int, normal_side: Side) -> str:
    """A balance signed towards ``normal_side`` as ``Rp 1.234 Dr`` / ``Cr``."""
    return rupiah_side(balance, normal_side, "en")


def print_json(data: Any) -> None:
    """JSON as the reports have always printed it (integers, ISO times)."""
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def print_csv(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]], zone: ZoneInfo) -> None:
    """The rows as CSV with English headers (no byte order mark on stdout)."""
    sys.stdout.write(to_csv(columns, rows, lang="en", zone=zone).decode("utf-8-sig"))


def printed(
    fmt: Format,
    as_json: bool,
    data: Any,
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    zone: ZoneInfo,
) -> bool:
    """Print ``data`` as JSON or ``rows`` as CSV when that is the format asked for; ``False`` for a table (the
    caller prints it)."""
    fmt = chosen(fmt, as_json)
    if fmt is Format.JSON:
        print_json(data)
    elif fmt is Format.CSV:
        print_csv(columns, rows, zone)
    return fmt is not Format.TABLE


def print_table(
    title: str | None, headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[str] = ()
) -> None:
    """A Rich table of plain-text cells; the ``right`` headers are right-aligned (amounts)."""
    aligned = set(right)
    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="right" if header in aligned else "left")
    for row in rows:
        table.add_row(*row)
    console().print(table)
