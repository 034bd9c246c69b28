"""Sub-commands imported only when the command line names them.

A ``karya`` sub-app lives with its service and imports what its commands need (the ledger's reports, the finance
workspace's web app, weasyprint): seconds of CPU that ``karya serve ledger``, a process the tests and the benchmark
start many times, would otherwise pay for commands it never runs. A :class:`LazyGroup` knows its sub-apps by a
table, name → :class:`SubCommand` (module, attribute, help), and imports one when the command line resolves to it
(:meth:`LazyGroup.resolve_command`, also how shell completion walks ``karya ledger <TAB>``). Listing the sub-apps,
in ``karya --help`` and when completing ``karya <TAB>``, shows the table's help and imports nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class SubCommand:
    """Where a sub-app lives: ``module``'s ``attribute``, a :class:`typer.Typer` (a command group) or a function
    (one command), and the help ``karya --help`` lists it with (its Typer's ``help``, or its docstring's first
    paragraph: a test holds the two equal)."""

    module: str
    attribute: str
    help: str

    def load(self, name: str) -> Any:
        """The command this sub-app is on the command line as ``name`` (imports its module)."""
        target = getattr(importlib.import_module(self.module), self.attribute)
        if isinstance(target, typer.Typer):
            group = typer.main.get_group(target)
            group.name = name
            return group
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        return typer.main.get_command(single)


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands: the ones it was built with, then the table's, each imported on first use; while
    :meth:`listing`, a sub-app not imported yet stands in as a command carrying only its name and help."""

    def __init__(self, built: MutableMapping[str, Any], table: Mapping[str, SubCommand]) -> None:
        self._built = built
        self._table = table
        self._loaded: dict[str, Any] = {}
        self._listing = False

    def __getitem__(self, name: str) -> Any:
        if name in self._built:
            return self._built[name]
        if name in self._loaded:
            return self._loaded[name]
        entry = self._table[name]
        if self._listing:
            return TyperCommand(name=name, help=entry.help)
        self._loaded[name] = entry.load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._built
        yield from (name for name in self._table if name not in self._built)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @contextmanager
    def listing(self) -> Iterator[None]:
        """Within: the sub-apps not imported yet are listed by their table entry."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False


class LazyGroup(TyperGroup):
    """A Typer group whose :attr:`table` sub-apps are imported when the command line names them (pass a subclass
    from :func:`lazy_group` as ``typer.Typer(cls=...)``)."""

    table: ClassVar[Mapping[str, SubCommand]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = self._lazy = LazyCommands(self.commands, self.table)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The group's help, its sub-apps listed from the table."""
        with self._lazy.listing():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """Completions of a sub-app's name (with its help from the table) and of the group's options."""
        with self._lazy.listing():
            return super().shell_complete(ctx, incomplete)


def lazy_group(table: Mapping[str, SubCommand]) -> type[LazyGroup]:
    """A :class:`LazyGroup` class whose sub-apps are ``table``'s."""
    return type("KaryaGroup", (LazyGroup,), {"table": table})
