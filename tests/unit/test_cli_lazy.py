"""``karya``'s sub-apps are imported when the command line names them (karya.lazy_cli): ``karya --help`` lists
every one from the table without importing any, the listing is the one the sub-apps' own help gives, a named
sub-app runs as before, and ``karya serve ledger`` loads neither the finance workspace nor another sub-app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from karya import cli
from karya.lazy_cli import LazyCommands

ROOT = Path(__file__).resolve().parents[2]
SUB_APP_MODULES = sorted({entry.module for entry in cli.SUBCOMMANDS.values()})
NOWHERE = "postgresql+asyncpg://nobody:none@127.0.0.1:1/none"


def _loaded_after(code: str, extra_env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code`` (which leaves stdout to this helper)."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **(extra_env or {})}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_help_lists_every_sub_app_and_imports_none() -> None:
    loaded = _loaded_after(
        "from typer.testing import CliRunner\nfrom karya import cli\n"
        "result = CliRunner().invoke(cli.app, ['--help'])\nassert result.exit_code == 0, result.output\n"
        "assert all(f' {name} ' in result.output for name in cli.SUBCOMMANDS), result.output"
    )
    assert loaded & set(SUB_APP_MODULES) == set()
    assert not any(name.startswith("services.") or name.startswith("weasyprint") for name in loaded)


def test_the_table_lists_each_sub_app_with_its_own_help(monkeypatch: pytest.MonkeyPatch) -> None:
    from_the_table = CliRunner().invoke(cli.app, ["--help"]).output
    monkeypatch.setattr(LazyCommands, "listing", lambda self: nullcontext())  # the listing imports every sub-app
    from_the_sub_apps = CliRunner().invoke(cli.app, ["--help"]).output
    assert from_the_table == from_the_sub_apps
    group = typer.main.get_command(cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    assert group.list_commands(typer.Context(group)) == ["serve", *cli.SUBCOMMANDS]


def test_a_named_sub_app_runs_as_a_sub_command() -> None:
    result = CliRunner().invoke(cli.app, ["ledger", "report", "--help"])
    assert result.exit_code == 0, result.output
    assert "ledger report [OPTIONS] COMMAND" in result.output and "balance-sheet" in result.output
    typo = CliRunner().invoke(cli.app, ["ledgr"])
    assert typo.exit_code == 2 and "Did you mean 'ledger'?" in typo.output


def test_serving_the_ledger_loads_no_other_sub_app_nor_the_finance_workspace() -> None:
    """Up to ``uvicorn.run`` (stubbed: nothing is served or connected), ``karya serve ledger`` builds the app."""
    loaded = _loaded_after(
        "import uvicorn\nuvicorn.run = lambda *args, **kwargs: None\nfrom karya import cli\n"
        "cli.app(['serve', 'ledger', '--port', '1'], prog_name='karya', standalone_mode=False)",
        {"DATABASE_URL": NOWHERE, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
    )
    assert "services.ledger.app" in loaded
    assert loaded & set(SUB_APP_MODULES) == set()
    assert sorted(name for name in loaded if name.startswith(("services.finance", "weasyprint"))) == []


def test_the_ledgers_commands_load_neither_its_service_process_nor_the_finance_workspace() -> None:
    """``karya ledger`` takes the ledger's names from ``services.ledger.names`` and its formatting from the shared
    ``services.presentation``: the service process (its runtime, FastStream) and the workspace stay unloaded."""
    loaded = _loaded_after(
        "from typer.testing import CliRunner\nfrom karya import cli\n"
        "result = CliRunner().invoke(cli.app, ['ledger', '--help'])\nassert result.exit_code == 0, result.output"
    )
    assert {"services.ledger.cli", "services.ledger.cli_waiting", "services.presentation.exports"} <= loaded
    heavy = ("services.ledger.app", "infra.runtime", "services.finance", "faststream", "weasyprint")
    assert sorted(name for name in loaded if name.startswith(heavy)) == []
