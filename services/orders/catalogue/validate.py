"""Turn raw catalogue records (from YAML or CSV) into a validated :class:`Catalogue`.

Every problem is collected, never just the first: field errors per record, duplicate natural keys per
section, then references between sections. Messages read
``FILE: SECTION row N (line L) [ID]: FIELD: what is wrong`` with 1-based ``N`` counting records of the
section and ``L`` the source line when known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.orders.catalogue.fields import (
    FieldError,
    Parser,
    channel_id,
    code,
    enum_of,
    integer,
    iso_date,
    slug,
    text_value,
    work_group,
)
from services.orders.catalogue.model import (
    Catalogue,
    CatalogueError,
    Channel,
    Lapas,
    Listing,
    Product,
    ProductionBatch,
    ProductKind,
    Supplier,
    Workshop,
)

__all__ = ["SECTIONS", "Location", "RawRecord", "build_catalogue", "catalogue_to_records"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a raw record came from, for error messages."""

    file: str
    section: str
    row: int  # 1-based index of the record within its section
    line: int | None = None  # 1-based source line, when the format knows it


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One unvalidated record. ``text`` is true for CSV, whose cells are all strings ("" = empty)."""

    loc: Location
    values: Mapping[Any, object]
    text: bool


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    parse: Parser
    optional: bool = False
    ref: str | None = None  # section whose id this field references


@dataclass(frozen=True, slots=True)
class _Section:
    name: str
    build: Callable[..., Any]
    fields: tuple[_Field, ...]
    id_field: str | None  # None: the natural key is the listing tuple
    field_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_names", tuple(f.name for f in self.fields))


#: Sections in dependency order, with their fields (also the CSV columns, in this order).
_TEXT = text_value
SECTIONS: tuple[_Section, ...] = (
    _Section(
        "lapas",
        Lapas,
        (_Field("lapas_id", slug), _Field("name", _TEXT), _Field("city", _TEXT), _Field("province", _TEXT)),
        "lapas_id",
    ),
    _Section(
        "workshops",
        Workshop,
        (
            _Field("workshop_id", slug),
            _Field("lapas_id", slug, ref="lapas"),
            _Field("name", _TEXT),
            _Field("kind", _TEXT),
        ),
        "workshop_id",
    ),
    _Section("suppliers", Supplier, (_Field("supplier_id", slug), _Field("name", _TEXT)), "supplier_id"),
    _Section(
        "products",
        Product,
        (
            _Field("sku", code),
            _Field("name", _TEXT),
            _Field("kind", enum_of(ProductKind)),
            _Field("list_price_idr", integer(1, "rupiah")),
            _Field("default_workshop_id", slug, ref="workshops"),
        ),
        "sku",
    ),
    _Section(
        "listings",
        Listing,
        (
            _Field("channel", enum_of(Channel)),
            _Field("shop_id", channel_id),
            _Field("channel_product_id", channel_id),
            _Field("channel_sku_id", channel_id, optional=True),
            _Field("sku", code, ref="products"),
            _Field("workshop_id", slug, ref="workshops"),
        ),
        None,
    ),
    _Section(
        "batches",
        ProductionBatch,
        (
            _Field("batch_id", code),
            _Field("workshop_id", slug, ref="workshops"),
            _Field("sku", code, ref="products"),
            _Field("produced_qty", integer(1, "units")),
            _Field("production_date", iso_date),
            _Field("unit_material_cost_idr", integer(0, "rupiah")),
            _Field("supplier_id", slug, ref="suppliers"),
            _Field("work_group", work_group),
        ),
        "batch_id",
    ),
)

_REF_NOUN = {"lapas": "lapas", "workshops": "workshop", "products": "product (sku)", "suppliers": "supplier"}


@dataclass
class _Parsed:
    rec: RawRecord
    values: dict[str, object]
    label: str | None


def _where(loc: Location, label: str | None) -> str:
    line = f" (line {loc.line})" if loc.line is not None else ""
    ident = f" [{label}]" if label else ""
    return f"{loc.file}: {loc.section} row {loc.row}{line}{ident}"


def _label(section: _Section, values: Mapping[str, object]) -> str | None:
    if section.id_field is not None:
        ident = values.get(section.id_field)
        return ident if isinstance(ident, str) else None
    parts = [values.get(k) for k in ("channel", "shop_id", "channel_product_id", "channel_sku_id")]
    if all(isinstance(p, str) for p in parts[:3]):
        return "/".join(str(p) for p in parts if isinstance(p, str))
    return None


def _parse_record(section: _Section, rec: RawRecord, errors: list[str]) -> _Parsed:
    values: dict[str, object] = {}
    problems: list[tuple[str, str]] = []
    for f in section.fields:
        present = f.name in rec.values
        raw = rec.values.get(f.name)
        if rec.text and raw == "":
            raw = None  # an empty CSV cell is an absent value
        if raw is None:
            if f.optional:
                values[f.name] = None
            else:
                problems.append((f.name, "missing value" if present else "missing field"))
            continue
        try:
            values[f.name] = f.parse(raw, rec.text)
        except FieldError as bad:
            problems.extend((sub or f.name, msg) for sub, msg in bad.problems)
    problems.extend((str(k), "unknown field") for k in rec.values if k not in section.field_names)
    label = _label(section, values) or _label(section, {k: v for k, v in rec.values.items() if isinstance(k, str)})
    where = _where(rec.loc, label)
    errors.extend(f"{where}: {name}: {msg}" for name, msg in problems)
    return _Parsed(rec, values, label)


def build_catalogue(
    sections: Mapping[str, Sequence[RawRecord]], errors: list[str], broken: set[str] | None = None
) -> Catalogue:
    """Validate raw records into a :class:`Catalogue`, or raise :class:`CatalogueError` with every problem.

    ``errors`` holds problems the reader already found (syntax, headers); ``broken`` names sections the
    reader could not read, so references into them are not reported a second time.
    """
    errors = list(errors)
    broken = set(broken or ())
    parsed: dict[str, list[_Parsed]] = {}
    known: dict[str, set[object]] = {}
    for section in SECTIONS:
        rows = [_parse_record(section, rec, errors) for rec in sections.get(section.name, ())]
        parsed[section.name] = rows
        first: dict[object, int] = {}
        for row in rows:
            key = _natural_key(section, row.values)
            if key is None:
                continue
            if key in first:
                field_name = section.id_field or "channel_product_id"
                where = _where(row.rec.loc, row.label)
                errors.append(f"{where}: {field_name}: duplicate of {section.name} row {first[key]}")
            else:
                first[key] = row.rec.loc.row
        known[section.name] = set(first)
    for section in SECTIONS:
        for row in parsed[section.name]:
            for f in section.fields:
                target = row.values.get(f.name)
                if f.ref is None or f.ref in broken or target is None or target in known[f.ref]:
                    continue
                errors.append(f"{_where(row.rec.loc, row.label)}: {f.name}: unknown {_REF_NOUN[f.ref]} {target!r}")
    if errors:
        raise CatalogueError(errors)
    built = {s.name: tuple(s.build(**row.values) for row in parsed[s.name]) for s in SECTIONS}
    return Catalogue(**built)


def _natural_key(section: _Section, values: Mapping[str, object]) -> object | None:
    if section.id_field is not None:
        return values.get(section.id_field)
    key = tuple(values.get(k) for k in ("channel", "shop_id", "channel_product_id", "channel_sku_id"))
    return None if any(part is None for part in key[:3]) else key


def catalogue_to_records(catalogue: Catalogue) -> dict[str, list[dict[str, object]]]:
    """Plain per-section records of a catalogue (typed values; work groups as lists of mappings)."""
    out: dict[str, list[dict[str, object]]] = {}
    for section in SECTIONS:
        rows: list[dict[str, object]] = []
        for record in getattr(catalogue, section.name):
            row: dict[str, object] = {}
            for name in section.field_names:
                value = getattr(record, name)
                if isinstance(value, StrEnum):
                    value = value.value
                elif name == "work_group":
                    value = [{"inmate_id": w.inmate_id, "work_share": w.work_share} for w in value]
                row[name] = value
            rows.append(row)
        out[section.name] = rows
    return out
