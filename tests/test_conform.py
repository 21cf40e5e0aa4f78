"""scenarios.check.conform and ``l4sim conform``: the kit passes ours, catches broken ones."""

from __future__ import annotations

from typing import Any

import pytest

from actors.kernel import KernelActor
from actors.rmgr import RmgrActor
from protocols.editions import L4ENV_2007
from scenarios.check.conform import ConformError, conformance_test, load_factory, run_conformance
from scenarios.cli import main
from tests.mutants_kernel_rmgr import LenientFree, NoChiefCheck

QUICK = {"max_examples": 25, "steps": 25}


@pytest.mark.parametrize(("protocol", "cls"), [("kernel", KernelActor), ("rmgr", RmgrActor)])
def test_the_shipped_implementations_conform(protocol: str, cls: type) -> None:
    report = run_conformance(protocol, cls, **QUICK)
    assert report.ok, report.render()
    assert report.examples >= 1 and report.steps > 0
    assert {name for name, _ in report.rules} == {"task_new", "call_rmgr"}


@pytest.mark.parametrize(("protocol", "mutant"), [("kernel", NoChiefCheck), ("rmgr", LenientFree)])
def test_mutants_do_not_conform_and_get_a_shrunk_counterexample(
    protocol: str, mutant: type
) -> None:
    report = run_conformance(protocol, mutant, **QUICK)
    assert not report.ok
    assert report.counterexample is not None
    program = report.counterexample
    assert "state = " in program and "state.teardown()" in program
    assert len(program.splitlines()) < 25  # shrunk to a short program
    assert "DOES NOT CONFORM" in report.render()


def test_the_pytest_entry_point_fails_for_a_mutant() -> None:
    case = conformance_test("kernel", NoChiefCheck, **QUICK)("test_conforms")
    result = case.defaultTestResult()
    case.run(result)
    assert len(result.failures) == 1 and "DOES NOT CONFORM" in result.failures[0][1]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nocolon", "module:factory"),
        ("no.such.module:X", "cannot import"),
        ("tests.mutants_kernel_rmgr:Missing", "has no Missing"),
        ("tests.mutants_kernel_rmgr:ErrorCode.OK", "not a class"),
    ],
)
def test_bad_factories_are_clear_errors(target: str, message: str) -> None:
    with pytest.raises(ConformError, match=message):
        load_factory(target)


def test_a_factory_function_is_called() -> None:
    assert load_factory("tests.mutants_kernel_rmgr:no_chief_check") is NoChiefCheck


def test_cli_conform(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "rmgr", "actors.rmgr:RmgrActor", "--examples", "5"]) == 0
    assert "CONFORMS" in capsys.readouterr().out
    assert (
        main(["conform", "kernel", "tests.mutants_kernel_rmgr:NoChiefCheck", "--examples", "25"])
        == 1
    )
    out = capsys.readouterr().out
    assert "DOES NOT CONFORM" in out and "shrunk counterexample" in out


def test_cli_conform_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "kernel", "actors.rmgr:RmgrActor"]) == 2
    assert "is not a Pykka actor usable as a kernel" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["conform", "nonsense", "actors.rmgr:RmgrActor"])
    assert exit_.value.code == 2


@pytest.mark.parametrize(
    ("protocol", "target"),
    [("task_server", "actors.task_server:TaskServer"), ("cache", "actors.l4linux:L4LinuxServer")],
)
def test_the_shipped_task_server_and_cache_conform(protocol: str, target: str) -> None:
    report = run_conformance(protocol, target, max_examples=15, steps=20)
    assert report.ok, report.render()
    assert "every_task_is_in_exactly_one_place" in report.invariants
    # the spec comparison, the eight invariants and invariant 4's request half
    assert len(report.invariants) == 10


@pytest.mark.parametrize(
    ("protocol", "target"),
    [
        ("task_server", "tests.test_mutants:AllocateChiefKeepsChief"),
        ("cache", "tests.test_mutants:ReuseKeepsOldVersion"),
    ],
)
def test_broken_task_servers_and_caches_get_a_short_counterexample(
    protocol: str, target: str
) -> None:
    report = run_conformance(protocol, target, max_examples=60, steps=30)
    assert not report.ok and report.counterexample is not None
    assert len(report.counterexample.splitlines()) < 25


def test_a_copy_of_our_task_server_with_one_bug_gets_a_short_counterexample(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's user story: copy the task server, break one line, run the kit."""
    from pathlib import Path

    import actors.task_server

    source = Path(actors.task_server.__file__).read_text()
    right = "return self._task_new(task, client)"
    assert right in source
    bug = "return self._task_new(task, RMGR_TASK)  # one bug: allocate2 keeps the chief"
    (tmp_path / "my_ts_copy.py").write_text(source.replace(right, bug))
    monkeypatch.chdir(tmp_path)
    assert main(["conform", "task_server", "my_ts_copy:TaskServer", "--examples", "60"]) == 1
    out = capsys.readouterr().out
    program = out.split("shrunk counterexample:", 1)[1].strip().splitlines()
    assert "DOES NOT CONFORM" in out and len(program) < 12


def test_an_implementation_of_the_seed_system_conforms_to_l4env_2007(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Our own task server conforms to either edition's rules; in l4env-2007 only the
    spec is compared (the seed's findings break the invariants), and the report says so."""
    seed = run_conformance(
        "task_server", "actors.task_server:TaskServer", max_examples=10, edition=L4ENV_2007
    )
    assert seed.ok and seed.edition == "l4env-2007"
    assert seed.invariants == ("replies and snapshot equal the spec",)
    argv = ["conform", "cache", "actors.l4linux:L4LinuxServer", "--examples", "5"]
    assert main([*argv, "--edition", "l4env-2007"]) == 0
    assert "(l4env-2007): CONFORMS" in capsys.readouterr().out


def test_a_mutant_of_hardened_does_not_conform_to_the_seed_spec_either() -> None:
    report = run_conformance(
        "task_server",
        "tests.test_mutants:AllocateChiefKeepsChief",
        max_examples=60,
        edition=L4ENV_2007,
    )
    assert not report.ok and report.failure is not None
