"""CSV catalogue format: a directory with one CSV file per section.

Files ``lapas.csv``, ``workshops.csv``, ``suppliers.csv``, ``products.csv``, ``listings.csv`` and
``batches.csv``; all six are required (a header-only file is an empty section). Each is UTF-8 (a leading
BOM is accepted), comma-separated with RFC 4180 quoting, and starts with a header row naming exactly the
section's columns, in any order:

* lapas.csv: ``lapas_id,name,city,province``
* workshops.csv: ``workshop_id,lapas_id,name,kind``
* suppliers.csv: ``supplier_id,name``
* products.csv: ``sku,name,kind,list_price_idr,default_workshop_id``
* listings.csv: ``channel,shop_id,channel_product_id,channel_sku_id,sku,workshop_id``
* batches.csv:
  ``batch_id,workshop_id,sku,produced_qty,production_date,unit_material_cost_idr,supplier_id,work_group``

Cells are taken verbatim. An empty cell is a missing value; only ``channel_sku_id`` may be empty. Integers
are plain digits (no thousands separators, no decimals), dates ``YYYY-MM-DD``, and a work group is
``INMATE_ID:SHARE`` entries joined by ``;``, e.g. ``WBP-7F3K2Q:3;WBP-9A0B1C:2``. Rows whose cells are all
empty are skipped. Errors name the file, the record number within the file (1-based, header excluded) and
its line.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from services.orders.catalogue.model import Catalogue
from services.orders.catalogue.validate import SECTIONS, Location, RawRecord, catalogue_to_records

__all__ = ["csv_file_name", "dump_csv", "read_csv_dir"]


def csv_file_name(section: str) -> str:
    """The file holding one section in a CSV catalogue directory."""
    return f"{section}.csv"


def _read_section(
    text: str, file: str, section: str, columns: tuple[str, ...], errors: list[str]
) -> list[RawRecord] | None:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            errors.append(f"{file}: empty file, expected a header row: {','.join(columns)}")
            return None
        problems = [f"missing column {c!r}" for c in columns if c not in header]
        problems += [f"unknown column {c!r}" for c in header if c not in columns]
        problems += [f"duplicate column {c!r}" for c in sorted(set(header)) if header.count(c) > 1]
        if problems:
            errors.extend(f"{file}: line 1 (header): {p}" for p in problems)
            return None
        records: list[RawRecord] = []
        line = reader.line_num + 1
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cells):
                continue
            loc = Location(file, section, len(records) + 1, start)
            if len(cells) != len(header):
                counts = f"has {len(cells)} cells, header has {len(header)}"
                errors.append(f"{file}: {section} row {loc.row} (line {start}): {counts}")
            padded = cells + [""] * (len(header) - len(cells))
            records.append(RawRecord(loc, dict(zip(header, padded, strict=False)), text=True))
        return records
    except csv.Error as exc:
        errors.append(f"{file}: line {reader.line_num}: CSV syntax error: {exc}")
        return None


def read_csv_dir(directory: Path) -> tuple[dict[str, list[RawRecord]], list[str], set[str]]:
    """Raw records per section, reader errors, and the sections that could not be read at all."""
    sections: dict[str, list[RawRecord]] = {}
    errors: list[str] = []
    broken: set[str] = set()
    for section in SECTIONS:
        path = directory / csv_file_name(section.name)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            errors.append(f"{path}: missing file (header-only if the section is empty)")
            broken.add(section.name)
            continue
        except UnicodeDecodeError as exc:
            errors.append(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}")
            broken.add(section.name)
            continue
        records = _read_section(text, str(path), section.name, section.field_names, errors)
        if records is None:
            broken.add(section.name)
        else:
            sections[section.name] = records
    return sections, errors, broken


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(f"{w['inmate_id']}:{w['work_share']}" for w in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def dump_csv(catalogue: Catalogue, directory: Path) -> None:
    """Write the catalogue as CSV files into ``directory`` (created if needed), one file per section."""
    directory.mkdir(parents=True, exist_ok=True)
    records = catalogue_to_records(catalogue)
    for section in SECTIONS:
        with (directory / csv_file_name(section.name)).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(section.field_names)
            for row in records[section.name]:
                writer.writerow([_cell(row[name]) for name in section.field_names])
