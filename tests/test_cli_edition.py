"""The edition reaches every command that builds a system: run, trace (and the trace file
it writes, which ``check`` replays in that edition) and reproduce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.cost.profile import load_profile
from scenarios.report.reproduce import Sizes, report
from scenarios.report.tracefile import load

SMALL = Sizes(native_calls=200, l4linux_calls=20, reads=2, pairs=2, managed=8)


@pytest.mark.parametrize("name", ["l4env-2007", "hardened"])
def test_run_records_in_the_edition_asked_for(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "fork", "--strategy", "chief", "-n", "2", "--edition", name, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["edition"] == name and out["pairs"] == 2


def test_the_default_edition_is_the_seed_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "fork", "-n", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["edition"] == "l4env-2007"


@pytest.mark.parametrize("command", [["run", "fork"], ["trace", "fork"], ["reproduce"]])
def test_an_unknown_edition_is_a_usage_error(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--edition", "l4env-2099"])
    assert exc.value.code == 2
    assert "invalid choice: 'l4env-2099'" in capsys.readouterr().err


def test_a_trace_file_records_its_edition_and_check_replays_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fork.jsonl"
    argv = ["trace", "fork", "-n", "1", "--format", "jsonl", "--edition", "hardened"]
    assert main([*argv, "-o", str(path)]) == 0
    assert load(str(path)).boot["edition"] == "hardened"
    capsys.readouterr()
    assert main(["check", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["edition"] == "hardened"


def test_reproduce_says_which_edition_it_measured() -> None:
    rep = report(load_profile(), SMALL, edition="hardened")
    assert rep.to_json()["edition"] == "hardened"
    assert "edition hardened" in rep.lines()[1]
