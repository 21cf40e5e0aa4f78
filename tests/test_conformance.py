"""protocols.conformance and ``l4sim check``: replaying traces against the specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import EIP_CLIENT, BootConfig, System
from actors.images import factory
from actors.rmgr import RmgrActor
from protocols import kernel
from protocols.conformance import KernelRmgrModel, check
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.kernel import EIP_RMGR
from protocols.rmgr import FreeTask, GetTask, RmgrReply
from scenarios.cli import main
from scenarios.report.tracefile import dumps

RMGR = task_id(RMGR_TASK)


def run(rmgr_class: type[RmgrActor] = RmgrActor) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Two clients: a takes task 9, hands it back, b frees it (only the owner may)."""
    system = System(BootConfig(task_count=16, modules=(EIP_CLIENT, EIP_CLIENT)))
    system.runtime.images[EIP_RMGR] = factory(rmgr_class)
    with system.start():
        a, b = system.modules
        system.perform(a, RMGR, GetTask(number=9))
        system.syscall(a, kernel.TaskNew(dest=task_id(9), mcp_or_new_chief=RMGR))
        system.perform(b, RMGR, FreeTask(number=9))
        system.perform(a, RMGR, FreeTask(number=9))
        system.syscall(
            b, kernel.TaskNew(dest=task_id(9, 1), mcp_or_new_chief=1, pager=task_id(SIGMA0_TASK))
        )
        return system.trace.since(system.boot_mark), system.boot_record()


class Lenient(RmgrActor):
    """A broken RMGR that skips the owner check of free_task."""

    def free_task(self, sender: ThreadId, msg: FreeTask) -> RmgrReply:
        if self._take_back(msg.number):
            return RmgrReply(error=ErrorCode.OK, task=task_id(msg.number))
        return RmgrReply(error=ErrorCode.ENOTCHIEF)


def test_the_shipped_kernel_and_rmgr_conform() -> None:
    events, boot_record = run()
    report = check(events, KernelRmgrModel.from_boot(boot_record))
    assert report.ok, report.violation
    assert report.steps == 5  # four requests to RMGR... and top-level system calls
    assert report.events == len(events)


def test_a_broken_rmgr_is_caught_at_the_first_wrong_reply() -> None:
    events, boot_record = run(Lenient)
    report = check(events, KernelRmgrModel.from_boot(boot_record))
    assert not report.ok and report.violation is not None
    v = report.violation
    assert v.expected == RmgrReply(error=ErrorCode.ENOTOWNER)
    assert v.got is not None and v.got.error is ErrorCode.OK  # type: ignore[attr-defined]
    assert report.steps == 3  # GetTask and the hand-back conformed; b's FreeTask did not
    assert any(getattr(e, "message", None) == FreeTask(number=9) for e in v.history)


def test_a_reply_without_a_call_is_malformed() -> None:
    events, boot_record = run()
    replies = [e for e in events if type(e).__name__ == "IpcReply"]
    report = check(replies, KernelRmgrModel.from_boot(boot_record))
    assert not report.ok and "no open call" in report.violation.what  # type: ignore[union-attr]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_text(text)
    return path


def test_cli_check_passes_a_conforming_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, boot_record = run()
    assert main(["check", str(write(tmp_path, dumps(events, boot_record)))]) == 0
    assert "conforms: 5 steps" in capsys.readouterr().out


def test_cli_check_reports_a_tampered_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, boot_record = run()
    text = dumps(events, boot_record).replace('"error": "ENOTOWNER"', '"error": "OK"', 1)
    assert main(["check", str(write(tmp_path, text))]) == 1
    out = capsys.readouterr().out
    assert (
        out.startswith("VIOLATION at event")
        and "expected: RmgrReply(error=ErrorCode.ENOTOWNER" in out
    )


@pytest.mark.parametrize("content", ["", "nonsense", '{"format": "l4sim-trace", "version": 2}'])
def test_cli_check_refuses_bad_files_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    assert main(["check", str(write(tmp_path, content))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("l4sim: error:") and len(err.splitlines()) == 1


def test_cli_check_refuses_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def fork_trace(
    strategy: str, images: dict[int, Any] | None = None, edition: str = "l4env-2007"
) -> Any:
    """Three fork+exit+wait pairs on L4Linux, recorded with the snapshot at the start."""
    from actors import BootConfig, System
    from protocols.linux import Exit, Fork, Wait

    system = System(BootConfig(task_count=32, linux=1, strategy=strategy, edition=edition))
    system.runtime.images.update(images or {})
    with system.start():
        init = system.init_processes[0]
        initial = system.snapshot()
        mark = system.trace.mark()
        for _ in range(3):
            child = system.linux_call(init, Fork())
            if child.error is ErrorCode.OK:
                system.linux_call(child.task, Exit())
                system.linux_call(init, Wait(pid=child.pid))
        return system.trace.since(mark), system.boot_record(), initial


@pytest.mark.parametrize("strategy", ["classic", "chief", "chief+cache", "merged"])
def test_whole_l4linux_runs_conform_to_the_ownership_spec(strategy: str) -> None:
    from protocols.conformance import OwnershipModel, model_for

    events, boot_record, initial = fork_trace(strategy)
    for model in (model_for(boot_record, initial), OwnershipModel.from_boot(boot_record)):
        report = check(events, model)
        assert report.ok, report.violation
        assert report.model == "ownership" and report.steps >= 9  # 3 x (fork, exit, wait)


@pytest.mark.parametrize(
    ("strategy", "eip", "mutant"),
    [
        ("chief+cache", "EIP_L4LINUX", "ReuseKeepsOldVersion"),
        ("chief+cache", "EIP_L4LINUX", "CacheGivesBackButKeeps"),
    ],
)
def test_a_broken_server_inside_an_l4linux_run_is_caught(
    strategy: str, eip: str, mutant: str
) -> None:
    from actors.images import factory
    from protocols import l4linux, task_server
    from protocols.conformance import model_for
    from tests import test_mutants

    number = getattr(task_server, eip, None) or getattr(l4linux, eip)
    # a mutant of hardened: in l4env-2007 the cache reuses ids unchanged anyway
    events, boot_record, initial = fork_trace(
        strategy, {number: factory(getattr(test_mutants, mutant))}, edition="hardened"
    )
    report = check(events, model_for(boot_record, initial))
    assert not report.ok and report.violation is not None
    assert "Fork" in report.violation.what
