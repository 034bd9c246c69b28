"""Product catalogue: lapas → workshops → products → marketplace listings and production batches.

Pure code (no database). ``load_catalogue(path)`` reads a YAML file or a directory of CSV files and returns
a validated, immutable :class:`Catalogue`, or raises :class:`CatalogueError` listing every problem.
"""

from services.orders.catalogue.loader import dump_catalogue, load_catalogue
from services.orders.catalogue.model import (
    INMATE_ID_PATTERN,
    Catalogue,
    CatalogueError,
    Channel,
    Lapas,
    Listing,
    ListingKey,
    Product,
    ProductionBatch,
    ProductKind,
    Supplier,
    WorkShare,
    Workshop,
)

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
    "dump_catalogue",
    "load_catalogue",
]
