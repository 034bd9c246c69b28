"""Load a catalogue file (YAML) or directory (CSV) into a validated :class:`Catalogue`."""

from __future__ import annotations

from pathlib import Path

from services.orders.catalogue.csv_format import dump_csv, read_csv_dir
from services.orders.catalogue.model import Catalogue, CatalogueError
from services.orders.catalogue.validate import build_catalogue
from services.orders.catalogue.yaml_format import dump_yaml, read_yaml

__all__ = ["dump_catalogue", "load_catalogue"]

YAML_SUFFIXES = frozenset({".yaml", ".yml"})


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate a catalogue.

    ``path`` is a ``.yaml``/``.yml`` file, or a directory of per-section CSV files
    (see :mod:`services.orders.catalogue.csv_format`). Raises :class:`CatalogueError` listing every
    problem found, each naming the file, record and field.
    """
    if path.is_dir():
        sections, errors, broken = read_csv_dir(path)
    elif path.suffix.lower() in YAML_SUFFIXES:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CatalogueError([f"{path}: no such file"]) from None
        except UnicodeDecodeError as exc:
            raise CatalogueError([f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
        sections, errors, broken = read_yaml(text, str(path))
    elif path.suffix.lower() == ".csv":
        raise CatalogueError(
            [f"{path}: a CSV catalogue is a directory of per-section files; pass {path.parent} instead"]
        )
    elif not path.exists():
        raise CatalogueError([f"{path}: no such file or directory"])
    else:
        raise CatalogueError([f"{path}: expected a .yaml/.yml file or a directory of CSV files"])
    return build_catalogue(sections, errors, broken)


def dump_catalogue(catalogue: Catalogue, path: Path, header: str = "") -> None:
    """Write ``catalogue`` so that :func:`load_catalogue` reads it back equal.

    A ``.yaml``/``.yml`` path gets one YAML file (``header`` as leading comments); any other path is
    taken as a directory for the CSV layout.
    """
    if path.suffix.lower() in YAML_SUFFIXES:
        path.write_text(dump_yaml(catalogue, header), encoding="utf-8")
    else:
        dump_csv(catalogue, path)
