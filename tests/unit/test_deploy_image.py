"""deploy/image/Dockerfile, read as text (no container engine on these machines builds it): it has a build stage
and a runtime stage, installs with the exact versions of constraints.txt, copies every package pyproject.toml
installs and the files the code reads beside them, runs as a non-root user, and its entrypoint is `karya`. The
ignore file beside it lets exactly those paths into the build context.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib

from tests.deploy_support import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "image" / "Dockerfile"
IGNORE = DEPLOY / "image" / "Dockerfile.dockerignore"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    text = re.sub(r"<<'PY'.*?\nPY\n", "\n", text, flags=re.DOTALL)  # heredoc bodies are not instructions
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for op, arg in _instructions():
        if op == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((op, arg))
    return stages


def _in_context(path: str) -> bool:
    """Whether ``path`` reaches the build context through the ignore file (last matching rule wins)."""
    keep = True
    for rule in (r.strip() for r in IGNORE.read_text().splitlines()):
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if pattern == "**" or fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            keep = negate
    return keep


def test_two_stages_the_last_runs_as_a_non_root_user_with_karya_as_entrypoint() -> None:
    stages = _stages()
    assert len(stages) >= 2, "multi-stage"
    final = stages[-1]
    users = [arg for op, arg in final if op == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "non-root"
    assert ("ENTRYPOINT", '["karya"]') in final
    assert any(op == "COPY" and "--from=build" in arg for op, arg in final), "the runtime copies what was built"
    assert not any(op == "RUN" and "pip install" in arg for op, arg in final), "no installing in the runtime stage"


def test_every_pip_install_is_constrained_by_the_lock_file() -> None:
    installs = [arg for op, arg in _instructions() if op == "RUN" and "pip install" in arg]
    assert installs
    for command in installs:
        for part in command.split("&&"):
            if "pip install" in part:
                assert "-c constraints.txt" in part, part


def test_it_copies_every_installed_package_and_what_the_code_reads_beside_it() -> None:
    copied = {word for op, arg in _instructions() if op == "COPY" and "--from" not in arg for word in arg.split()}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = packages | {"schemas", "constraints.txt", "pyproject.toml", "README.md", "deploy/demo"}
    assert needed <= copied, sorted(needed - copied)
    for path in needed:
        assert (ROOT / path).exists(), path
        assert _in_context(path), f"{path} is kept out of the build context by {IGNORE.name}"
    assert not _in_context(".venv") and not _in_context(".local") and not _in_context(".git")
