"""Catalogue records: lapas → workshop → product → listing / production batch.

Modelled on the Ministry of Industry's e-Smart IKM (production centres, their products and marketplace
links). Records are plain frozen dataclasses; validation happens when a catalogue file is loaded
(see :mod:`services.orders.catalogue.loader`). Inmates appear only as pseudonymous ids (``WBP-XXXXXX``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cached_property

from services.contracts.channels import Channel

__all__ = [
    "INMATE_ID_PATTERN",
    "Catalogue",
    "CatalogueError",
    "Channel",
    "Lapas",
    "Listing",
    "Product",
    "ProductKind",
    "ProductionBatch",
    "Supplier",
    "WorkShare",
    "Workshop",
]

#: Pseudonymous inmate id: ``WBP-`` and six upper-case letters or digits. Real identities live elsewhere.
INMATE_ID_PATTERN = re.compile(r"WBP-[0-9A-Z]{6}")


class ProductKind(StrEnum):
    """Kinds of goods made in lapas workshops."""

    GLOVES = "gloves"
    WOODWORK = "woodwork"
    WOODEN_MAT = "wooden_mat"
    COCONUT_CRAFT = "coconut_craft"
    BATIK = "batik"
    FURNITURE = "furniture"


class CatalogueError(Exception):
    """A catalogue file is invalid; ``errors`` lists every problem found, one message each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"catalogue invalid: {count} error{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  - {e}" for e in self.errors)])


@dataclass(frozen=True, slots=True)
class Lapas:
    """A correctional institution (lembaga pemasyarakatan). Natural key: ``lapas_id``."""

    lapas_id: str
    name: str
    city: str
    province: str


@dataclass(frozen=True, slots=True)
class Workshop:
    """A production workshop (bengkel kerja / sentra) of one lapas. Natural key: ``workshop_id``."""

    workshop_id: str
    lapas_id: str
    name: str
    kind: str  # free text as the lapas names it, e.g. "sentra kerajinan", "bengkel kayu"


@dataclass(frozen=True, slots=True)
class Supplier:
    """A raw-material supplier. Natural key: ``supplier_id``."""

    supplier_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Product:
    """A product (our SKU) with its list price in whole rupiah. Natural key: ``sku``."""

    sku: str
    name: str
    kind: ProductKind
    list_price_idr: int
    default_workshop_id: str


#: (channel, shop_id, channel_product_id, channel_sku_id) — unique per listing.


@dataclass(frozen=True, slots=True)
class Listing:
    """A marketplace listing mapping a channel's product (and variant) id onto our SKU and a workshop.

    ``channel_sku_id`` is the channel's variant id (TikTok Shop ``sku_id``, Shopee ``model_id``, Blibli
    ``merchantSku``); ``None`` when the channel identifies the listing by product id alone.
    """

    channel: Channel
    shop_id: str
    channel_product_id: str
    channel_sku_id: str | None
    sku: str
    workshop_id: str


@dataclass(frozen=True, slots=True)
class WorkShare:
    """One inmate's share of the work on a batch (a positive weight, not a percentage)."""

    inmate_id: str
    work_share: int


@dataclass(frozen=True, slots=True)
class ProductionBatch:
    """A production lot: what a work group made in a workshop on a date, with its material cost.

    Natural key: ``batch_id``. ``unit_material_cost_idr`` is owed to ``supplier_id`` per unit produced.
    """

    batch_id: str
    workshop_id: str
    sku: str
    produced_qty: int
    production_date: date
    unit_material_cost_idr: int
    supplier_id: str
    work_group: tuple[WorkShare, ...]


@dataclass(frozen=True)
class Catalogue:
    """A whole, validated catalogue; records keep the order of the source file."""

    lapas: tuple[Lapas, ...] = ()
    workshops: tuple[Workshop, ...] = ()
    suppliers: tuple[Supplier, ...] = ()
    products: tuple[Product, ...] = ()
    listings: tuple[Listing, ...] = ()
    batches: tuple[ProductionBatch, ...] = ()

    # Lookup indexes, built on first use (cached_property writes the instance dict directly, so this
    # works on a frozen dataclass and does not take part in equality).
    @cached_property
    def products_by_sku(self) -> dict[str, Product]:
        """Products by ``sku``."""
        return {r.sku: r for r in self.products}
