"""The l4sim command line: help, version, profiles, scenario runs, errors, exit codes."""

from __future__ import annotations

import argparse
import importlib
import json

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
    "argv",
    [
        ["frobnicate"],
        ["run", "getpid", "-n", "x"],
        ["explore", "--tasks", "-3"],
        ["reproduce", "--bogus"],
    ],
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


def test_explore_proves_a_small_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--tasks", "2", "--clients", "1"]) == 0
    out = capsys.readouterr().out
    assert "states" in out and "proved for this bound" in out


def test_explore_defaults_to_the_ownership_spec_and_keeps_kernel_rmgr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["explore", "--tasks", "2", "--clients", "1", "--strategy", "chief+cache"]
    assert main([*argv, "--edition", "hardened"]) == 0
    assert capsys.readouterr().out.startswith("ownership spec (chief+cache), 2 tasks, 1 clients")
    argv = ["explore", "--spec", "kernel-rmgr", "--tasks", "1", "--clients", "1"]
    assert main([*argv, "--edition", "hardened"]) == 0
    assert capsys.readouterr().out.startswith("kernel-rmgr spec, 1 tasks, 1 clients")


def test_explore_refuses_fewer_tasks_than_inits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--tasks", "1", "--clients", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("l4sim: error:") and "init" in err[0]


def test_explore_rejects_a_bad_bound(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["explore", "--tasks", "0"])
    assert exit_.value.code == 2


def test_profile_list_names_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "list"]) == 0
    assert "duron800" in capsys.readouterr().out


def test_profile_show_json_has_every_constant_with_provenance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["profile", "show", "--json", "--set", "tlb.tagged=true"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["constants"]["tlb.tagged"] == {
        "value": True,
        "provenance": "override",
        "note": "--set tlb.tagged=true (was False)",
    }
    assert data["constants"]["cpu.mhz"]["provenance"] == "published"


def test_profile_show_text_lists_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "show", "duron800"]) == 0
    out = capsys.readouterr().out
    assert "tlb.miss_cycles" in out and "calibrated" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["profile", "show", "no-such-machine"],
        ["profile", "show", "--set", "tlb.nope=1"],
        ["run", "getpid", "--mode", "native", "--set", "timer.hz=fast"],
        ["run", "getpid", "--mode", "native", "--profile", "/nonexistent.toml"],
    ],
)
def test_bad_profile_input_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err


def test_run_getpid_native_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "getpid", "--mode", "native", "-n", "100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"cycles_per_call", "tlb_misses_per_call", "breakdown"}
    assert data["calls"] == 100


def test_no_arguments_print_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: l4sim") and "reproduce" in out and "findings" in out


def _check_defaults_shown(parser: argparse.ArgumentParser, where: str) -> int:
    formatter = parser._get_formatter()
    checked = 0
    for action in parser._actions:
        d = action.default
        if not action.option_strings or d in (None, False, [], "", argparse.SUPPRESS):
            continue
        shown = d.value if hasattr(d, "value") else d
        text = formatter._expand_help(action) if action.help else ""
        assert str(shown) in text, (where, action.dest, text)
        checked += 1
    return checked


def test_every_option_help_names_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from scenarios import _common
    from scenarios.cli import SCENARIOS, build_parser

    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = sum(_check_defaults_shown(p, name) for name, p in sub.choices.items())
    made: list[argparse.ArgumentParser] = []

    def recording(name: str, description: str | None) -> argparse.ArgumentParser:
        made.append(real(name, description))
        return made[-1]

    real = _common.scenario_parser
    monkeypatch.setattr(_common, "scenario_parser", recording)
    for name in SCENARIOS:
        module = importlib.import_module(f"scenarios.scripts.{name}")
        monkeypatch.setattr(module, "scenario_parser", recording)
        with pytest.raises(SystemExit):
            main(["run", name, "--help"])
    assert len(made) == len(SCENARIOS)
    checked += sum(_check_defaults_shown(p, p.prog) for p in made)
    assert checked >= 15


def test_conform_names_the_protocols_the_kit_checks() -> None:
    from scenarios.check.conform import PROTOCOLS
    from scenarios.cli import CONFORM_PROTOCOLS

    assert tuple(sorted(PROTOCOLS)) == CONFORM_PROTOCOLS


def test_without_hypothesis_the_scenarios_run_and_conform_says_what_to_install() -> None:
    # Hypothesis is the `check` extra: a user who only runs scenarios does not need it.
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "from scenarios.cli import main\n"
        "assert main(['run', 'getpid', '-n', '5']) == 0\n"
        "assert main(['explore', '--tasks', '2', '--clients', '1']) == 0\n"
        "assert main(['conform', 'kernel', 'mod:name']) == 2\n"
        "assert 'hypothesis' not in sys.modules or sys.modules['hypothesis'] is None\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "l4sim conform runs Hypothesis state machines: pip install 'l4sim[check]'" in (
        done.stderr
    )
