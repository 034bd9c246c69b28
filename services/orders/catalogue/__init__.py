"""Product catalogue: lapas → workshops → products → marketplace listings and production batches.

Pure code (no database). ``load_catalogue(path)`` reads a YAML file or a directory of CSV files and returns
a validated, immutable :class:`Catalogue`, or raises :class:`CatalogueError` listing every problem.
"""

from services.orders.catalogue import model
from services.orders.catalogue.loader import dump_catalogue, load_catalogue
from services.orders.catalogue.model import *  # noqa: F403  (the records; model.__all__ names them)

__all__ = [*model.__all__, "dump_catalogue", "load_catalogue"]
