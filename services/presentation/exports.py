"""Any table to CSV or XLSX bytes, given its column specs and rows (dicts).

Rupiah stay integers: plain digits in CSV, integer cells with a ``"Rp" #,##0`` number format in XLSX (never a
float). Instants are written in the table's zone: ISO 8601 with the offset in CSV, a local time cell in XLSX whose
header names the zone (a spreadsheet cell has no zone).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from services.presentation.messages import DEFAULT_LANG, Lang, message
from services.presentation.zones import iso_local, zone_label

Kind = Literal["text", "int", "rupiah", "datetime", "date"]
ExportFormat = Literal["csv", "xlsx", "pdf"]
MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
RUPIAH_FORMAT = '"Rp" #,##0;-"Rp" #,##0'
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class Column:
    """One exported column: the row key it reads, its header (a message key, else the text itself), its kind."""

    key: str
    header: str
    kind: Kind = "text"

    def title(self, lang: Lang, zone: ZoneInfo) -> str:
        """The header in ``lang``; a datetime column names the zone its times are in."""
        text = message(self.header, lang) if _known(self.header) else self.header
        return f"{text} ({zone_label(zone)})" if self.kind == "datetime" else text


def _known(key: str) -> bool:
    try:
        message(key, DEFAULT_LANG)
    except KeyError:
        return False
    return True


def _checked(column: Column, value: Any) -> Any:
    """``value`` as the column's kind allows it; a float or a naive time is a bug upstream, refused loudly."""
    if value is None:
        return None
    if column.kind in ("int", "rupiah") and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"column {column.key!r} holds whole numbers, got {value!r}")
    if column.kind == "datetime" and (not isinstance(value, datetime) or value.tzinfo is None):
        raise TypeError(f"column {column.key!r} holds aware datetimes, got {value!r}")
    if column.kind == "date" and not isinstance(value, date):
        raise TypeError(f"column {column.key!r} holds dates, got {value!r}")
    return value


def to_csv(
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    *,
    lang: Lang = DEFAULT_LANG,
    zone: ZoneInfo = UTC_ZONE,
) -> bytes:
    """UTF-8 CSV with a byte order mark (spreadsheets then read the Indonesian text right), one header row."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.title(lang, zone) for c in columns])
    for row in rows:
        cells = []
        for c in columns:
            value = _checked(c, row.get(c.key))
            if value is None:
                cells.append("")
            elif c.kind == "datetime":
                cells.append(iso_local(value, zone))
            elif c.kind == "date":
                cells.append(value.isoformat())
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    *,
    title: str = "Karya",
    lang: Lang = DEFAULT_LANG,
    zone: ZoneInfo = UTC_ZONE,
) -> bytes:
    """One worksheet: a bold header row (frozen), typed cells (integers, local times, dates, text)."""
    # Imported here: every `karya ledger` command imports this module for CSV, and openpyxl takes ~80 ms to load.
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = title[:31]  # Excel's limit on sheet names
    sheet.append([c.title(lang, zone) for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for index, row in enumerate(rows, start=2):
        for col, c in enumerate(columns, start=1):
            value = _checked(c, row.get(c.key))
            if c.kind == "datetime" and value is not None:
                value = value.astimezone(zone).replace(tzinfo=None)
            cell = sheet.cell(row=index, column=col, value=value)
            if c.kind == "rupiah":
                cell.number_format = RUPIAH_FORMAT
            elif c.kind == "datetime":
                cell.number_format = DATETIME_FORMAT
            elif c.kind == "date":
                cell.number_format = DATE_FORMAT
    for col, c in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(col)].width = max(12, len(c.title(lang, zone)) + 2)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download_headers(stem: str, fmt: ExportFormat) -> dict[str, str]:
    """``Content-Type`` and an attachment ``Content-Disposition`` for an export named ``stem`` (characters other
    than letters, digits, ``-``, ``_`` and ``.`` become ``_``, so no header can be injected through a name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:120] or "export"
    return {
        "Content-Type": MEDIA_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="{safe}.{fmt}"',
        "Cache-Control": "no-store",
    }
