"""``python -m bench.compare`` runs each side's own bench: the ledger-only runs are switched off where that bench has
them, so a comparison of pipeline runs compares only those."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import compare
from bench.compare import tree_args


def _tree(tmp_path: Path, name: str, main: str) -> Path:
    tree = tmp_path / name
    (tree / "bench").mkdir(parents=True)
    (tree / "bench" / "__main__.py").write_text(main)
    return tree


def test_a_bench_with_ledger_only_runs_gets_them_switched_off_and_an_older_one_its_arguments_unchanged(
    tmp_path: Path,
) -> None:
    new = _tree(tmp_path, "new", 'parser.add_argument("--scale-orders", type=int, default=5000)\n')
    old = _tree(tmp_path, "old", 'parser.add_argument("--orders", nargs="*")\n')
    args = ["--orders", "10000", "--no-latency"]
    assert tree_args(new, args) == [*args, "--scale-orders", "0"]
    assert tree_args(old, args) == args


def test_a_scale_size_the_caller_asked_for_is_kept(tmp_path: Path) -> None:
    new = _tree(tmp_path, "new", 'parser.add_argument("--scale-orders", type=int, default=5000)\n')
    args = ["--orders", "10000", "--scale-orders", "2000"]
    assert tree_args(new, args) == args


def test_ledger_only_runs_are_refused_before_any_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["bench.compare", "HEAD~1", "HEAD", "--", "--ledger-only", "--orders", "5000"])
    monkeypatch.setattr(compare, "worktree", lambda rev: pytest.fail("a worktree was made"))
    with pytest.raises(SystemExit) as exited:
        compare.main()
    assert exited.value.code == 2
    assert "--ledger-only runs are not compared here" in capsys.readouterr().err
