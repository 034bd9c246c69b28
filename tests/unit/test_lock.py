"""constraints.txt (what `make install` installs with) pins every dependency pyproject.toml declares, at a version
the declaration allows: a dependency added or moved without `make lock` fails here, not on a fresh machine that
would resolve it to whatever the index serves that day."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    for req in _declared():
        if req.marker is not None and not req.marker.evaluate():
            continue
        pinned = pins.get(_name(req.name))
        assert pinned is not None, f"{req.name} is not in constraints.txt: run `make lock`"
        assert req.specifier.contains(pinned, prereleases=True), f"{req.name}=={pinned} is outside {req.specifier}"


def test_make_install_installs_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -c constraints.txt -e '.[dev]'" in makefile
    assert re.search(r"^\$\(VENV\)/\.installed: pyproject\.toml constraints\.txt$", makefile, re.MULTILINE)
