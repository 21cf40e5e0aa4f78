"""The l4sim command line: help, version, errors, exit codes."""

from __future__ import annotations

import pytest

from scenarios import __version__
from scenarios.cli import main


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("reproduce", "run", "profile", "trace", "check", "conform", "explore", "bench"):
        assert name in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [[], ["frobnicate"], ["reproduce", "--tasks", "x"], ["reproduce", "--tasks", "-3"]]
)
def test_bad_arguments_exit_2_with_a_one_line_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("l4sim") and "error" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_reproduce_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--tasks", "64"]) == 0
    assert "invariants hold" in capsys.readouterr().out


def test_explore_proves_a_small_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--tasks", "2", "--clients", "1"]) == 0
    out = capsys.readouterr().out
    assert "states" in out and "proved for this bound" in out


def test_explore_rejects_a_bad_bound(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["explore", "--tasks", "0"])
    assert exit_.value.code == 2
