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
    "ListingKey",
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

    @property
    def key(self) -> str:
        """Stable natural key."""
        return self.lapas_id


@dataclass(frozen=True, slots=True)
class Workshop:
    """A production workshop (bengkel kerja / sentra) of one lapas. Natural key: ``workshop_id``."""

    workshop_id: str
    lapas_id: str
    name: str
    kind: str  # free text as the lapas names it, e.g. "sentra kerajinan", "bengkel kayu"

    @property
    def key(self) -> str:
        """Stable natural key."""
        return self.workshop_id


@dataclass(frozen=True, slots=True)
class Supplier:
    """A raw-material supplier. Natural key: ``supplier_id``."""

    supplier_id: str
    name: str

    @property
    def key(self) -> str:
        """Stable natural key."""
        return self.supplier_id


@dataclass(frozen=True, slots=True)
class Product:
    """A product (our SKU) with its list price in whole rupiah. Natural key: ``sku``."""

    sku: str
    name: str
    kind: ProductKind
    list_price_idr: int
    default_workshop_id: str

    @property
    def key(self) -> str:
        """Stable natural key."""
        return self.sku


#: (channel, shop_id, channel_product_id, channel_sku_id) — unique per listing.
ListingKey = tuple[Channel, str, str, str | None]


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

    @property
    def key(self) -> ListingKey:
        """Stable natural key."""
        return (self.channel, self.shop_id, self.channel_product_id, self.channel_sku_id)


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

    @property
    def key(self) -> str:
        """Stable natural key."""
        return self.batch_id


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
    def lapas_by_id(self) -> dict[str, Lapas]:
        """Lapas by ``lapas_id``."""
        return {r.lapas_id: r for r in self.lapas}

    @cached_property
    def workshops_by_id(self) -> dict[str, Workshop]:
        """Workshops by ``workshop_id``."""
        return {r.workshop_id: r for r in self.workshops}

    @cached_property
    def suppliers_by_id(self) -> dict[str, Supplier]:
        """Suppliers by ``supplier_id``."""
        return {r.supplier_id: r for r in self.suppliers}

    @cached_property
    def products_by_sku(self) -> dict[str, Product]:
        """Products by ``sku``."""
        return {r.sku: r for r in self.products}

    @cached_property
    def listings_by_key(self) -> dict[ListingKey, Listing]:
        """Listings by their natural key."""
        return {r.key: r for r in self.listings}

    @cached_property
    def batches_by_id(self) -> dict[str, ProductionBatch]:
        """Batches by ``batch_id``."""
        return {r.batch_id: r for r in self.batches}

    def find_listing(
        self, channel: Channel, shop_id: str, channel_product_id: str, channel_sku_id: str | None = None
    ) -> Listing | None:
        """The listing for a channel item: the exact variant first, else the product-level listing."""
        index = self.listings_by_key
        if channel_sku_id is not None:
            exact = index.get((channel, shop_id, channel_product_id, channel_sku_id))
            if exact is not None:
                return exact
        return index.get((channel, shop_id, channel_product_id, None))

    def workshops_of_lapas(self, lapas_id: str) -> tuple[Workshop, ...]:
        """Workshops of one lapas, in file order."""
        return tuple(w for w in self.workshops if w.lapas_id == lapas_id)

    def batches_fifo(self, sku: str) -> tuple[ProductionBatch, ...]:
        """Batches of one SKU, oldest production date first (ties by ``batch_id``)."""
        return tuple(sorted((b for b in self.batches if b.sku == sku), key=lambda b: (b.production_date, b.batch_id)))
