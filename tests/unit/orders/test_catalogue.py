"""Catalogue model, YAML/CSV parsing and validation, and the shipped demo catalogue."""

from __future__ import annotations

import copy
import csv
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from services.orders.catalogue import (
    INMATE_ID_PATTERN,
    Catalogue,
    CatalogueError,
    Channel,
    Lapas,
    Listing,
    Product,
    ProductionBatch,
    ProductKind,
    Supplier,
    WorkShare,
    Workshop,
    dump_catalogue,
    load_catalogue,
)

DEMO = Path(__file__).resolve().parents[3] / "deploy" / "demo" / "catalogue.yaml"

Data = dict[str, list[dict[str, Any]]]


def base_data() -> Data:
    """A small valid catalogue as plain YAML-shaped data."""
    return {
        "lapas": [
            {"lapas_id": "cipinang", "name": "Lapas Kelas I Cipinang", "city": "Jakarta Timur",
             "province": "DKI Jakarta"},
            {"lapas_id": "tangerang", "name": "Lapas Kelas I Tangerang", "city": "Tangerang",
             "province": "Banten"},
        ],
        "workshops": [
            {"workshop_id": "cipinang-konveksi", "lapas_id": "cipinang", "name": "Bengkel Konveksi",
             "kind": "bengkel konveksi"},
            {"workshop_id": "cipinang-kerajinan", "lapas_id": "cipinang", "name": "Sentra Kerajinan",
             "kind": "sentra kerajinan"},
            {"workshop_id": "tangerang-kerajinan", "lapas_id": "tangerang", "name": "Sentra Kerajinan",
             "kind": "sentra kerajinan"},
        ],
        "suppliers": [{"supplier_id": "sup-kapas", "name": "CV Kapas Jaya"}],
        "products": [
            {"sku": "CPN-GLV-001", "name": "Sarung Tangan Kerja", "kind": "gloves", "list_price_idr": 25000,
             "default_workshop_id": "cipinang-konveksi"},
            {"sku": "TNG-MAT-001", "name": "Keset Kayu Jati", "kind": "wooden_mat", "list_price_idr": 85000,
             "default_workshop_id": "tangerang-kerajinan"},
        ],
        "listings": [
            {"channel": "tokopedia", "shop_id": "52249671", "channel_product_id": "4680295117",
             "sku": "CPN-GLV-001", "workshop_id": "cipinang-konveksi"},
            {"channel": "tiktok_shop", "shop_id": "7494000000000000001",
             "channel_product_id": "1729000000000000001", "channel_sku_id": "1729000000000000002",
             "sku": "TNG-MAT-001", "workshop_id": "tangerang-kerajinan"},
        ],
        "batches": [
            {"batch_id": "CPN-GLV-001-B01", "workshop_id": "cipinang-konveksi", "sku": "CPN-GLV-001",
             "produced_qty": 120, "production_date": date(2026, 1, 12), "unit_material_cost_idr": 9500,
             "supplier_id": "sup-kapas",
             "work_group": [{"inmate_id": "WBP-7F3K2Q", "work_share": 3},
                            {"inmate_id": "WBP-9A0B1C", "work_share": 2}]},
            {"batch_id": "CPN-GLV-001-B02", "workshop_id": "cipinang-kerajinan", "sku": "CPN-GLV-001",
             "produced_qty": 80, "production_date": date(2026, 2, 3), "unit_material_cost_idr": 9000,
             "supplier_id": "sup-kapas", "work_group": [{"inmate_id": "WBP-000XYZ", "work_share": 1}]},
        ],
    }  # fmt: skip


def expected_base() -> Catalogue:
    """``base_data()`` as the model."""
    return Catalogue(
        lapas=(
            Lapas("cipinang", "Lapas Kelas I Cipinang", "Jakarta Timur", "DKI Jakarta"),
            Lapas("tangerang", "Lapas Kelas I Tangerang", "Tangerang", "Banten"),
        ),
        workshops=(
            Workshop("cipinang-konveksi", "cipinang", "Bengkel Konveksi", "bengkel konveksi"),
            Workshop("cipinang-kerajinan", "cipinang", "Sentra Kerajinan", "sentra kerajinan"),
            Workshop("tangerang-kerajinan", "tangerang", "Sentra Kerajinan", "sentra kerajinan"),
        ),
        suppliers=(Supplier("sup-kapas", "CV Kapas Jaya"),),
        products=(
            Product("CPN-GLV-001", "Sarung Tangan Kerja", ProductKind.GLOVES, 25000, "cipinang-konveksi"),
            Product("TNG-MAT-001", "Keset Kayu Jati", ProductKind.WOODEN_MAT, 85000, "tangerang-kerajinan"),
        ),
        listings=(
            Listing(Channel.TOKOPEDIA, "52249671", "4680295117", None, "CPN-GLV-001", "cipinang-konveksi"),
            Listing(Channel.TIKTOK_SHOP, "7494000000000000001", "1729000000000000001", "1729000000000000002",
                    "TNG-MAT-001", "tangerang-kerajinan"),
        ),
        batches=(
            ProductionBatch("CPN-GLV-001-B01", "cipinang-konveksi", "CPN-GLV-001", 120, date(2026, 1, 12),
                            9500, "sup-kapas", (WorkShare("WBP-7F3K2Q", 3), WorkShare("WBP-9A0B1C", 2))),
            ProductionBatch("CPN-GLV-001-B02", "cipinang-kerajinan", "CPN-GLV-001", 80, date(2026, 2, 3),
                            9000, "sup-kapas", (WorkShare("WBP-000XYZ", 1),)),
        ),
    )  # fmt: skip


def write_yaml(tmp_path: Path, data: object, name: str = "catalogue.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def load_errors(path: Path) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert str(info.value).startswith(f"catalogue invalid: {len(info.value.errors)} error")
    for message in info.value.errors:
        assert f"  - {message}" in str(info.value)
    return info.value.errors


# --- the demo catalogue -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return load_catalogue(DEMO)


def lapas_of_workshop(catalogue: Catalogue) -> dict[str, str]:
    """The lapas each workshop belongs to, by ``workshop_id``."""
    return {w.workshop_id: w.lapas_id for w in catalogue.workshops}


def test_demo_catalogue_parses_and_meets_the_minimums(demo: Catalogue) -> None:
    assert {lp.lapas_id for lp in demo.lapas} >= {"cipinang", "sukamiskin", "kerobokan", "tangerang"}
    kerobokan = next(lp for lp in demo.lapas if lp.lapas_id == "kerobokan")
    assert kerobokan == Lapas("kerobokan", "Lapas Kelas IIA Kerobokan", "Badung", "Bali")
    assert len(demo.lapas) >= 3 and len(demo.workshops) >= 6 and len(demo.products) >= 20
    assert {p.kind for p in demo.products} == set(ProductKind)
    assert {li.channel for li in demo.listings} == set(Channel)
    per_lapas = Counter(w.lapas_id for w in demo.workshops)
    assert all(per_lapas[lp.lapas_id] >= 1 for lp in demo.lapas)
    assert sum(1 for n in per_lapas.values() if n >= 2) >= 2
    gloves = demo.products_by_sku["CPN-GLV-001"]
    assert gloves.kind is ProductKind.GLOVES
    assert lapas_of_workshop(demo)[gloves.default_workshop_id] == "cipinang"


def test_demo_batches_are_plausible(demo: Catalogue) -> None:
    batches_per_sku = Counter(b.sku for b in demo.batches)
    for product in demo.products:
        assert 2 <= batches_per_sku[product.sku] <= 4, product.sku
        total = sum(b.produced_qty for b in demo.batches if b.sku == product.sku)
        assert (20 if product.kind is ProductKind.FURNITURE else 150) <= total <= 600, product.sku
    for batch in demo.batches:
        assert 2 <= len(batch.work_group) <= 6
        assert all(INMATE_ID_PATTERN.fullmatch(w.inmate_id) and w.work_share > 0 for w in batch.work_group)
        assert batch.production_date.year == 2026
        assert batch.unit_material_cost_idr < demo.products_by_sku[batch.sku].list_price_idr
    # some SKU has stock in two workshops of one lapas, so the same-lapas fallback can be exercised
    lapas = lapas_of_workshop(demo)
    spread = {sku: {lapas[b.workshop_id] for b in demo.batches if b.sku == sku} for sku in batches_per_sku}
    multi = [s for s in spread if len({b.workshop_id for b in demo.batches if b.sku == s}) >= 2]
    assert len({next(iter(spread[s])) for s in multi if len(spread[s]) == 1}) >= 2


def test_demo_every_product_is_listed_on_the_live_channels(demo: Catalogue) -> None:
    for channel in (Channel.TOKOPEDIA, Channel.TIKTOK_SHOP, Channel.SHOPEE):
        assert {li.sku for li in demo.listings if li.channel is channel} == set(demo.products_by_sku)
    for listing in demo.listings:
        if listing.channel in (Channel.TOKOPEDIA, Channel.TIKTOK_SHOP, Channel.SHOPEE):
            assert listing.shop_id.isdigit() and listing.channel_product_id.isdigit()
    # one shop per channel per lapas
    lapas = lapas_of_workshop(demo)
    shops = {(li.channel, lapas[li.workshop_id], li.shop_id) for li in demo.listings}
    assert len(shops) == len({(c, lp) for c, lp, _ in shops})


def test_demo_round_trips_through_both_formats(demo: Catalogue, tmp_path: Path) -> None:
    dump_catalogue(demo, tmp_path / "again.yaml")
    dump_catalogue(demo, tmp_path / "csv")
    assert load_catalogue(tmp_path / "again.yaml") == demo
    assert load_catalogue(tmp_path / "csv") == demo


# --- the model ------------------------------------------------------------------------------------------


# --- validation: one bad value, one message naming file, row and field ------------------------------------

Mutation = Callable[[Data], None]


def _set(section: str, row: int, field: str, value: object) -> Mutation:
    def mutate(data: Data) -> None:
        data[section][row - 1][field] = value

    return mutate


def _drop(section: str, row: int, field: str) -> Mutation:
    def mutate(data: Data) -> None:
        del data[section][row - 1][field]

    return mutate


def _share(row: int, entry: int, field: str, value: object) -> Mutation:
    def mutate(data: Data) -> None:
        data["batches"][row - 1]["work_group"][entry - 1][field] = value

    return mutate


def _copy_row(section: str, row: int, **changes: object) -> Mutation:
    def mutate(data: Data) -> None:
        data[section].append(copy.deepcopy(data[section][row - 1]) | changes)

    return mutate


# (mutation, "section row N", label, field, message fragment)
FIELD_CASES = [
    pytest.param(_drop("products", 1, "name"), "products row 1", "CPN-GLV-001", "name", "missing field",
                 id="missing-field"),
    pytest.param(_set("products", 2, "name", None), "products row 2", "TNG-MAT-001", "name", "missing value",
                 id="null-value"),
    pytest.param(_set("lapas", 1, "warden", "x"), "lapas row 1", "cipinang", "warden", "unknown field",
                 id="unknown-field"),
    pytest.param(_set("products", 1, "list_price_idr", "25000"), "products row 1", "CPN-GLV-001",
                 "list_price_idr", "must be an integer, got string", id="money-as-string"),
    pytest.param(_set("products", 1, "list_price_idr", 150000.5), "products row 1", "CPN-GLV-001",
                 "list_price_idr", "must be a whole number of rupiah", id="fractional-money"),
    pytest.param(_set("products", 1, "list_price_idr", 25000.0), "products row 1", "CPN-GLV-001",
                 "list_price_idr", "written as an integer, got 25000.0", id="integral-float-money"),
    pytest.param(_set("products", 1, "list_price_idr", 0), "products row 1", "CPN-GLV-001",
                 "list_price_idr", "must be positive", id="zero-price"),
    pytest.param(_set("batches", 2, "unit_material_cost_idr", -1), "batches row 2", "CPN-GLV-001-B02",
                 "unit_material_cost_idr", "must be at least 0, got -1", id="negative-cost"),
    pytest.param(_set("batches", 1, "produced_qty", 0), "batches row 1", "CPN-GLV-001-B01", "produced_qty",
                 "must be positive, got 0", id="zero-quantity"),
    pytest.param(_set("batches", 1, "produced_qty", -5), "batches row 1", "CPN-GLV-001-B01", "produced_qty",
                 "must be positive, got -5", id="negative-quantity"),
    pytest.param(_set("batches", 1, "produced_qty", True), "batches row 1", "CPN-GLV-001-B01", "produced_qty",
                 "must be an integer, got boolean", id="bool-quantity"),
    pytest.param(_set("batches", 1, "production_date", "2026-02-30"), "batches row 1", "CPN-GLV-001-B01",
                 "production_date", "not a real calendar date", id="impossible-date"),
    pytest.param(_set("batches", 1, "production_date", datetime(2026, 1, 2, 8, 0)), "batches row 1",
                 "CPN-GLV-001-B01", "production_date", "must be a date written YYYY-MM-DD", id="datetime"),
    pytest.param(_set("batches", 1, "production_date", "12/01/2026"), "batches row 1", "CPN-GLV-001-B01",
                 "production_date", "must be a date written YYYY-MM-DD", id="date-format"),
    pytest.param(_share(1, 2, "work_share", 0), "batches row 1", "CPN-GLV-001-B01",
                 "work_group[2].work_share", "must be positive, got 0", id="zero-share"),
    pytest.param(_share(1, 1, "work_share", -2), "batches row 1", "CPN-GLV-001-B01",
                 "work_group[1].work_share", "must be positive, got -2", id="negative-share"),
    pytest.param(_share(1, 1, "inmate_id", "WBP-7f3k2q"), "batches row 1", "CPN-GLV-001-B01",
                 "work_group[1].inmate_id", "must look like 'WBP-7F3K2Q'", id="lowercase-pseudonym"),
    pytest.param(_share(1, 2, "inmate_id", "Budi Santoso"), "batches row 1", "CPN-GLV-001-B01",
                 "work_group[2].inmate_id", "must look like 'WBP-7F3K2Q'", id="name-not-pseudonym"),
    pytest.param(_share(1, 2, "inmate_id", "WBP-7F3K2Q"), "batches row 1", "CPN-GLV-001-B01",
                 "work_group[2].inmate_id", "WBP-7F3K2Q already listed at [1]", id="inmate-twice"),
    pytest.param(_share(1, 1, "name", "Budi"), "batches row 1", "CPN-GLV-001-B01",
                 "work_group[1].name", "unknown field", id="name-in-work-group"),
    pytest.param(_set("batches", 2, "work_group", []), "batches row 2", "CPN-GLV-001-B02", "work_group",
                 "must list at least one inmate", id="empty-work-group"),
    pytest.param(_set("workshops", 3, "lapas_id", "kerobokan"), "workshops row 3", "tangerang-kerajinan",
                 "lapas_id", "unknown lapas 'kerobokan'", id="workshop-of-unknown-lapas"),
    pytest.param(_set("products", 2, "default_workshop_id", "nowhere"), "products row 2", "TNG-MAT-001",
                 "default_workshop_id", "unknown workshop 'nowhere'", id="product-unknown-workshop"),
    pytest.param(_set("listings", 1, "sku", "CPN-GLV-999"), "listings row 1", "tokopedia/52249671/4680295117",
                 "sku", "unknown product (sku) 'CPN-GLV-999'", id="listing-unknown-sku"),
    pytest.param(_set("listings", 2, "workshop_id", "nowhere"), "listings row 2",
                 "tiktok_shop/7494000000000000001/1729000000000000001/1729000000000000002", "workshop_id",
                 "unknown workshop 'nowhere'", id="listing-unknown-workshop"),
    pytest.param(_set("batches", 2, "sku", "CPN-GLV-404"), "batches row 2", "CPN-GLV-001-B02", "sku",
                 "unknown product (sku) 'CPN-GLV-404'", id="batch-unknown-sku"),
    pytest.param(_set("batches", 1, "workshop_id", "nowhere"), "batches row 1", "CPN-GLV-001-B01",
                 "workshop_id", "unknown workshop 'nowhere'", id="batch-unknown-workshop"),
    pytest.param(_set("batches", 1, "supplier_id", "sup-nobody"), "batches row 1", "CPN-GLV-001-B01",
                 "supplier_id", "unknown supplier 'sup-nobody'", id="batch-unknown-supplier"),
    pytest.param(_copy_row("lapas", 1), "lapas row 3", "cipinang", "lapas_id", "duplicate of lapas row 1",
                 id="duplicate-lapas"),
    pytest.param(_copy_row("workshops", 1), "workshops row 4", "cipinang-konveksi", "workshop_id",
                 "duplicate of workshops row 1", id="duplicate-workshop"),
    pytest.param(_copy_row("products", 2), "products row 3", "TNG-MAT-001", "sku",
                 "duplicate of products row 2", id="duplicate-sku"),
    pytest.param(_copy_row("batches", 1), "batches row 3", "CPN-GLV-001-B01", "batch_id",
                 "duplicate of batches row 1", id="duplicate-batch"),
    pytest.param(_copy_row("listings", 1), "listings row 3", "tokopedia/52249671/4680295117",
                 "channel_product_id", "duplicate of listings row 1", id="duplicate-listing"),
    pytest.param(_set("listings", 1, "channel", "lazada"), "listings row 1", None, "channel",
                 "must be one of tokopedia, tiktok_shop, shopee, blibli, bukalapak", id="unknown-channel"),
    pytest.param(_set("products", 1, "kind", "pottery"), "products row 1", "CPN-GLV-001", "kind",
                 "must be one of gloves, woodwork", id="unknown-kind"),
    pytest.param(_set("listings", 1, "channel_product_id", 4680295117), "listings row 1", None,
                 "channel_product_id", "must be a string (quote numeric ids in YAML)",
                 id="unquoted-channel-id"),
    pytest.param(_set("listings", 2, "channel_sku_id", ""), "listings row 2", None, "channel_sku_id",
                 "must look like", id="empty-channel-sku-id"),
    pytest.param(_copy_row("products", 1, sku="cpn glv 1"), "products row 3", "cpn glv 1", "sku",
                 "must look like 'CPN-GLV-001'", id="bad-sku-format"),
    pytest.param(_copy_row("lapas", 2, lapas_id="Tangerang"), "lapas row 3", "Tangerang", "lapas_id",
                 "must look like 'cipinang-bengkel-kayu'", id="bad-slug"),
    pytest.param(_set("suppliers", 1, "name", " CV Kapas Jaya"), "suppliers row 1", "sup-kapas", "name",
                 "must not start or end with whitespace", id="padded-name"),
    pytest.param(_set("suppliers", 1, "name", "CV Kapas\nJaya"), "suppliers row 1", "sup-kapas", "name",
                 "must not contain control characters", id="multiline-name"),
    pytest.param(_set("lapas", 1, "city", ""), "lapas row 1", "cipinang", "city", "must not be empty",
                 id="empty-name"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "where", "label", "field", "fragment"), FIELD_CASES)
def test_yaml_field_error_names_file_row_and_field(
    tmp_path: Path, mutate: Mutation, where: str, label: str | None, field: str, fragment: str
) -> None:
    data = base_data()
    mutate(data)
    path = write_yaml(tmp_path, data)
    errors = load_errors(path)
    assert len(errors) == 1, errors  # exactly one problem: no cascade into referencing records
    message = errors[0]
    assert message.startswith(f"{path}: {where} (line ")
    assert f": {field}: " in message and fragment in message
    if label is not None:
        assert f"[{label}]: " in message


def test_yaml_row_line_numbers_point_at_the_record(tmp_path: Path) -> None:
    data = base_data()
    data["batches"][1]["produced_qty"] = 0
    path = write_yaml(tmp_path, data)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "CPN-GLV-001-B02" in text)
    assert load_errors(path) == [
        f"{path}: batches row 2 (line {line}) [CPN-GLV-001-B02]: produced_qty: must be positive, got 0"
    ]


def test_all_errors_are_collected(tmp_path: Path) -> None:
    data = base_data()
    data["products"][0]["list_price_idr"] = 150000.5
    data["products"][1]["kind"] = "pottery"
    data["listings"][0]["sku"] = "NOPE-1"
    data["batches"][0]["work_group"][0]["inmate_id"] = "WBP-1"
    data["batches"][0]["work_group"][1]["work_share"] = 0
    data["batches"][1]["produced_qty"] = -1
    errors = load_errors(write_yaml(tmp_path, data))
    assert [e.split(": ")[2] for e in errors] == [
        "list_price_idr", "kind", "work_group[1].inmate_id", "work_group[2].work_share",
        "produced_qty", "sku",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("lapas: [\n  {lapas_id: x\n", "line 3: YAML syntax error", id="syntax"),
        pytest.param("- just\n- a list\n", "the document must be a mapping of sections, got list", id="list"),
        pytest.param("", "the document must be a mapping of sections, got empty", id="empty"),
    ],
)
def test_yaml_document_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    errors = load_errors(path)
    assert len(errors) == 1 and errors[0].startswith(f"{path}: ") and fragment in errors[0], errors


def test_yaml_section_errors(tmp_path: Path) -> None:
    data: dict[str, Any] = dict(base_data())
    del data["suppliers"]
    data["inmates"] = [{"name": "never here"}]
    data["listings"] = {"not": "a list"}
    data["lapas"].append("cipinang")
    path = write_yaml(tmp_path, data)
    errors = load_errors(path)
    # batches name a supplier, but the suppliers section is missing: reported once, not per batch
    assert errors == [
        f"{path}: unknown section 'inmates' (expected lapas, workshops, suppliers, products, listings, batches)",
        f"{path}: lapas row 3 (line 10): must be a mapping of field names to values",
        f"{path}: missing section 'suppliers' (write `suppliers: []` if it is empty)",
        f"{path}: section 'listings' must be a list, got dict",
    ]


def test_yaml_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, base_data())
    text = path.read_text().replace("  city: Jakarta Timur\n", "  city: Jakarta Timur\n  city: Jakarta Pusat\n")
    path.write_text(text)
    line = text.splitlines().index("  city: Jakarta Pusat") + 1
    assert load_errors(path) == [f"{path}: line {line}: duplicate key 'city'"]


def test_unsupported_paths(tmp_path: Path) -> None:
    (tmp_path / "batches.csv").write_text("batch_id\n")
    (tmp_path / "notes.txt").write_text("x")
    assert "pass" in load_errors(tmp_path / "batches.csv")[0]
    assert "expected a .yaml/.yml file" in load_errors(tmp_path / "notes.txt")[0]
    assert load_errors(tmp_path / "missing.yaml") == [f"{tmp_path / 'missing.yaml'}: no such file"]


# --- CSV layout ------------------------------------------------------------------------------------------

CSV_FILES = {
    "lapas.csv": """lapas_id,name,city,province
cipinang,Lapas Kelas I Cipinang,Jakarta Timur,DKI Jakarta
tangerang,Lapas Kelas I Tangerang,Tangerang,Banten
""",
    "workshops.csv": """workshop_id,lapas_id,name,kind
cipinang-konveksi,cipinang,Bengkel Konveksi,bengkel konveksi
cipinang-kerajinan,cipinang,Sentra Kerajinan,sentra kerajinan
tangerang-kerajinan,tangerang,Sentra Kerajinan,sentra kerajinan
""",
    "suppliers.csv": "supplier_id,name\nsup-kapas,CV Kapas Jaya\n",
    # columns may come in any order
    "products.csv": """sku,kind,name,list_price_idr,default_workshop_id
CPN-GLV-001,gloves,Sarung Tangan Kerja,25000,cipinang-konveksi
TNG-MAT-001,wooden_mat,Keset Kayu Jati,85000,tangerang-kerajinan
""",
    "listings.csv": """channel,shop_id,channel_product_id,channel_sku_id,sku,workshop_id
tokopedia,52249671,4680295117,,CPN-GLV-001,cipinang-konveksi
tiktok_shop,7494000000000000001,1729000000000000001,1729000000000000002,TNG-MAT-001,tangerang-kerajinan
""",
    "batches.csv": "batch_id,workshop_id,sku,produced_qty,production_date,"
    """unit_material_cost_idr,supplier_id,work_group
CPN-GLV-001-B01,cipinang-konveksi,CPN-GLV-001,120,2026-01-12,9500,sup-kapas,WBP-7F3K2Q:3;WBP-9A0B1C:2

CPN-GLV-001-B02,cipinang-kerajinan,CPN-GLV-001,80,2026-02-03,9000,sup-kapas,WBP-000XYZ:1
""",
}


def write_csv_dir(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_csv_and_yaml_load_to_the_same_catalogue(tmp_path: Path) -> None:
    from_csv = load_catalogue(write_csv_dir(tmp_path / "csv", CSV_FILES))
    from_yaml = load_catalogue(write_yaml(tmp_path, base_data()))
    assert from_csv == from_yaml == expected_base()


def test_csv_accepts_a_byte_order_mark_and_spaces_in_work_groups(tmp_path: Path) -> None:
    files = dict(CSV_FILES)
    files["lapas.csv"] = "\ufeff" + files["lapas.csv"]
    files["batches.csv"] = files["batches.csv"].replace("WBP-7F3K2Q:3;WBP-9A0B1C:2", "WBP-7F3K2Q:3; WBP-9A0B1C:2")
    assert load_catalogue(write_csv_dir(tmp_path / "csv", files)) == expected_base()


def _csv_with(file: str, old: str, new: str) -> dict[str, str]:
    files = dict(CSV_FILES)
    assert old in files[file]
    files[file] = files[file].replace(old, new)
    return files


CSV_CASES = [
    pytest.param(_csv_with("products.csv", ",25000,", ",150000.5,"), "products.csv",
                 "products row 1 (line 2)",
                 "[CPN-GLV-001]: list_price_idr: must be a whole number of rupiah written with digits only",
                 id="fractional-money"),
    pytest.param(_csv_with("products.csv", ",85000,", ",85.000,"), "products.csv", "products row 2 (line 3)",
                 "[TNG-MAT-001]: list_price_idr: must be a whole number of rupiah", id="thousands-separator"),
    pytest.param(_csv_with("batches.csv", ",9000,", ",-9000,"), "batches.csv", "batches row 2 (line 4)",
                 "[CPN-GLV-001-B02]: unit_material_cost_idr: must be at least 0",
                 id="negative-cost-after-blank"),
    pytest.param(_csv_with("batches.csv", "WBP-9A0B1C:2", "WBP-9A0B1C2"), "batches.csv",
                 "batches row 1 (line 2)",
                 "[CPN-GLV-001-B01]: work_group[2]: must be INMATE_ID:SHARE, got 'WBP-9A0B1C2'",
                 id="bad-entry"),
    pytest.param(_csv_with("batches.csv", "WBP-000XYZ:1", "WBP-000XYZ:0"), "batches.csv", "batches row 2",
                 "work_group[1].work_share: must be positive, got 0", id="zero-share"),
    pytest.param(_csv_with("batches.csv", "WBP-000XYZ:1", ""), "batches.csv", "batches row 2",
                 "[CPN-GLV-001-B02]: work_group: missing value", id="no-work-group"),
    pytest.param(_csv_with("batches.csv", ",120,", ",,"), "batches.csv", "batches row 1",
                 "produced_qty: missing value", id="empty-cell"),
    pytest.param(_csv_with("batches.csv", "2026-01-12", "12/01/2026"), "batches.csv", "batches row 1",
                 "production_date: must be a date written YYYY-MM-DD", id="date-format"),
    pytest.param(_csv_with("lapas.csv", ",Banten\n", ",Banten,extra\n"), "lapas.csv", "lapas row 2 (line 3)",
                 "has 5 cells, header has 4", id="extra-cell"),
    pytest.param(_csv_with("listings.csv", "tokopedia,", "lazada,"), "listings.csv", "listings row 1",
                 "channel: must be one of", id="unknown-channel"),
]  # fmt: skip


@pytest.mark.parametrize(("files", "file", "where", "fragment"), CSV_CASES)
def test_csv_field_error_names_file_row_and_field(
    tmp_path: Path, files: dict[str, str], file: str, where: str, fragment: str
) -> None:
    directory = write_csv_dir(tmp_path / "csv", files)
    errors = load_errors(directory)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{directory / file}: {where}")
    assert fragment in errors[0]


def test_csv_header_problems_are_reported_once_without_cascade(tmp_path: Path) -> None:
    files = _csv_with("products.csv", "sku,kind,name,", "sku,kind,title,colour,")
    del files["suppliers.csv"]
    directory = write_csv_dir(tmp_path / "csv", files)
    assert load_errors(directory) == [
        f"{directory / 'suppliers.csv'}: missing file (header-only if the section is empty)",
        f"{directory / 'products.csv'}: line 1 (header): missing column 'name'",
        f"{directory / 'products.csv'}: line 1 (header): unknown column 'title'",
        f"{directory / 'products.csv'}: line 1 (header): unknown column 'colour'",
    ]


def test_csv_header_only_files_are_empty_sections(tmp_path: Path) -> None:
    files = {name: text.splitlines()[0] + "\n" for name, text in CSV_FILES.items()}
    assert load_catalogue(write_csv_dir(tmp_path / "csv", files)) == Catalogue()


def test_csv_dump_writes_the_documented_layout(tmp_path: Path) -> None:
    dump_catalogue(expected_base(), tmp_path / "out")
    with (tmp_path / "out" / "batches.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["work_group"] == "WBP-7F3K2Q:3;WBP-9A0B1C:2"
    assert rows[0]["production_date"] == "2026-01-12"
    with (tmp_path / "out" / "listings.csv").open(newline="") as fh:
        assert next(csv.DictReader(fh))["channel_sku_id"] == ""


# --- Hypothesis: any valid catalogue survives a dump and a load, in both formats ---------------------------

slugs = st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}", fullmatch=True)
codes = st.from_regex(r"[A-Z0-9]{1,5}(-[A-Z0-9]{1,5}){0,2}", fullmatch=True)
channel_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,24}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=24).filter(
    lambda s: s == s.strip()
)
inmates = st.from_regex(INMATE_ID_PATTERN, fullmatch=True)
money = st.integers(0, 10**13)
prices = st.integers(1, 10**13)


@st.composite
def catalogues(draw: st.DrawFn) -> Catalogue:
    lapas_ids = draw(st.lists(slugs, min_size=1, max_size=3, unique=True))
    ws_ids = draw(st.lists(slugs, min_size=1, max_size=4, unique=True))
    sup_ids = draw(st.lists(slugs, min_size=1, max_size=3, unique=True))
    skus = draw(st.lists(codes, min_size=1, max_size=4, unique=True))
    listing_keys = draw(
        st.lists(st.tuples(st.sampled_from(Channel), channel_ids, channel_ids, st.none() | channel_ids),
                 max_size=5, unique=True)
    )  # fmt: skip
    batch_ids = draw(st.lists(codes, max_size=4, unique=True))
    pick_ws, pick_sku = st.sampled_from(ws_ids), st.sampled_from(skus)
    return Catalogue(
        lapas=tuple(Lapas(i, draw(texts), draw(texts), draw(texts)) for i in lapas_ids),
        workshops=tuple(
            Workshop(i, draw(st.sampled_from(lapas_ids)), draw(texts), draw(texts)) for i in ws_ids
        ),
        suppliers=tuple(Supplier(i, draw(texts)) for i in sup_ids),
        products=tuple(
            Product(s, draw(texts), draw(st.sampled_from(ProductKind)), draw(prices), draw(pick_ws))
            for s in skus
        ),
        listings=tuple(Listing(*key, draw(pick_sku), draw(pick_ws)) for key in listing_keys),
        batches=tuple(
            ProductionBatch(
                b, draw(pick_ws), draw(pick_sku), draw(st.integers(1, 10**9)), draw(st.dates()), draw(money),
                draw(st.sampled_from(sup_ids)),
                tuple(WorkShare(i, draw(st.integers(1, 10**6)))
                      for i in draw(st.lists(inmates, min_size=1, max_size=6, unique=True))),
            )
            for b in batch_ids
        ),
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(catalogues())
def test_any_valid_catalogue_round_trips(catalogue: Catalogue) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dump_catalogue(catalogue, root / "c.yaml")
        dump_catalogue(catalogue, root / "csv")
        assert load_catalogue(root / "c.yaml") == catalogue
        assert load_catalogue(root / "csv") == catalogue
