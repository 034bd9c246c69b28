"""YAML catalogue format: one document, a mapping with one list per section.

```yaml
lapas:      [{lapas_id, name, city, province}, ...]
workshops:  [{workshop_id, lapas_id, name, kind}, ...]
suppliers:  [{supplier_id, name}, ...]
products:   [{sku, name, kind, list_price_idr, default_workshop_id}, ...]
listings:   [{channel, shop_id, channel_product_id, channel_sku_id?, sku, workshop_id}, ...]
batches:    [{batch_id, workshop_id, sku, produced_qty, production_date, unit_material_cost_idr,
              supplier_id, work_group: [{inmate_id, work_share}, ...]}, ...]
```

Channel ids must be quoted strings (``"1729384756"``), money and quantities plain integers, dates
``YYYY-MM-DD``. Duplicate mapping keys are errors (plain PyYAML would silently keep the last one).
"""

from __future__ import annotations

from typing import Any

import yaml

from services.orders.catalogue.model import Catalogue
from services.orders.catalogue.validate import SECTIONS, Location, RawRecord, catalogue_to_records

__all__ = ["dump_yaml", "read_yaml"]

SECTION_NAMES = tuple(s.name for s in SECTIONS)


# The C parser (libyaml) is ~10x faster; fall back to pure Python where PyYAML was built without it.
try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _Loader(_BaseLoader):
    """Safe loader that leaves an impossible date (``2026-02-30``) as a string for the validator to name."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _duplicate_keys(node: yaml.Node, file: str, errors: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    errors.append(f"{file}: line {key.start_mark.line + 1}: duplicate key {key.value!r}")
                seen.add(key.value)
            _duplicate_keys(value, file, errors)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, file, errors)


def read_yaml(text: str, file: str) -> tuple[dict[str, list[RawRecord]], list[str], set[str]]:
    """Raw records per section, reader errors, and the sections that could not be read at all."""
    errors: list[str] = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        problem = getattr(exc, "problem", None) or str(exc)
        return {}, [f"{file}: {where}: YAML syntax error: {problem}"], set(SECTION_NAMES)
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        kind = "empty" if data is None else type(data).__name__
        return {}, [f"{file}: the document must be a mapping of sections, got {kind}"], set(SECTION_NAMES)
    _duplicate_keys(node, file, errors)
    item_lines: dict[str, list[int]] = {}
    for key_node, value_node in node.value:
        if isinstance(value_node, yaml.SequenceNode):
            item_lines[str(key_node.value)] = [item.start_mark.line + 1 for item in value_node.value]
    errors.extend(
        f"{file}: unknown section {key!r} (expected {', '.join(SECTION_NAMES)})"
        for key in data
        if key not in SECTION_NAMES
    )
    sections: dict[str, list[RawRecord]] = {}
    broken: set[str] = set()
    for name in SECTION_NAMES:
        items = data.get(name)
        if name not in data:
            errors.append(f"{file}: missing section {name!r} (write `{name}: []` if it is empty)")
            broken.add(name)
            continue
        if items is None:
            items = []
        if not isinstance(items, list):
            errors.append(f"{file}: section {name!r} must be a list, got {type(items).__name__}")
            broken.add(name)
            continue
        lines = item_lines.get(name, [])
        records: list[RawRecord] = []
        for i, item in enumerate(items, start=1):
            loc = Location(file, name, i, lines[i - 1] if i <= len(lines) else None)
            if not isinstance(item, dict):
                at = f" (line {loc.line})" if loc.line is not None else ""
                errors.append(f"{file}: {name} row {i}{at}: must be a mapping of field names to values")
                continue
            records.append(RawRecord(loc, item, text=False))
        sections[name] = records
    return sections, errors, broken


class _Dumper(yaml.SafeDumper):
    pass


class _Flow(dict[str, object]):
    """A mapping written on one line (work-group entries)."""


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)


def dump_yaml(catalogue: Catalogue, header: str = "") -> str:
    """The catalogue as YAML text that :func:`read_yaml` reads back to an equal catalogue.

    ``header`` lines are written first as ``#`` comments.
    """
    records = catalogue_to_records(catalogue)
    for batch in records["batches"]:
        group = batch["work_group"]
        assert isinstance(group, list)
        batch["work_group"] = [_Flow(entry) for entry in group]
    for listing in records["listings"]:
        if listing["channel_sku_id"] is None:
            del listing["channel_sku_id"]
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    parts = []
    for name in SECTION_NAMES:
        body = yaml.dump({name: records[name]}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
        parts.append(body)
    return comments + "\n".join(parts)
