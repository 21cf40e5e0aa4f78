"""scenarios.report.tracefile: the versioned JSON-lines trace format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors import EIP_CLIENT, boot
from protocols import kernel
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, SIGMA0_TASK, task_id
from protocols.rmgr import FreeTaskAll, GetTask, RmgrTaskNew
from protocols.trace import SpaceSwitch, Touch, Trace, Work
from scenarios.report.tracefile import TraceFileError, dumps, load, loads


def recorded() -> tuple[tuple[object, ...], dict[str, object]]:
    with boot(task_count=16, modules=(EIP_CLIENT, EIP_CLIENT)) as system:
        a, b = system.modules
        system.perform(a, task_id(RMGR_TASK), GetTask(number=9))
        system.syscall(
            a,
            kernel.TaskNew(
                dest=task_id(9, 2), mcp_or_new_chief=5, pager=task_id(SIGMA0_TASK), eip=EIP_CLIENT
            ),
        )
        system.syscall(a, kernel.TaskNew(dest=task_id(9, 3), mcp_or_new_chief=b))
        system.perform(b, task_id(RMGR_TASK), RmgrTaskNew(dest=task_id(10, 1)))
        system.perform(b, task_id(12), GetTask(number=1))  # IPC failure
        system.perform(b, task_id(RMGR_TASK), FreeTaskAll(owner=b.task))
        return system.trace.since(system.boot_mark), system.boot_record()


def test_a_recorded_trace_survives_the_round_trip() -> None:
    events, boot_record = recorded()
    extra = Trace()
    extra.record(Touch, task=5, region="user", pages=(1, 2, 3))
    extra.record(Work, task=5, unit="linux.getpid")
    extra.record(SpaceSwitch, src=5, dst=4)
    text = dumps(events, boot_record)
    back = loads(text)
    assert back.events == events and back.boot == boot_record
    assert loads(dumps(extra.events(), {})).events == extra.events()


def test_every_line_is_json_with_a_versioned_header() -> None:
    events, boot_record = recorded()
    lines = dumps(events, boot_record).splitlines()
    header = json.loads(lines[0])
    assert (header["format"], header["version"]) == ("l4sim-trace", 1)
    assert all("event" in json.loads(line) for line in lines[1:])
    assert len(lines) == len(events) + 1


def good_text() -> str:
    events, boot_record = recorded()
    return dumps(events, boot_record)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: "", "empty"),
        (lambda t: "garbage\n", "line 1: not JSON"),
        (lambda t: '{"format": "other"}\n', "not an l4sim-trace"),
        (lambda t: t.replace('"version": 1', '"version": 99', 1), "version 99"),
        (lambda t: t[: len(t) // 2], "truncated"),
        (lambda t: t.replace('"rmgr.GetTask"', '"rmgr.StealTask"'), "unknown message type"),
        (lambda t: t.replace('"IpcCall"', '"Teleport"', 1), "unknown event"),
        (lambda t: t.replace('"t9.0v0"', '"t99999.0v0"', 1), "not a thread id"),
        (lambda t: t.replace('"OK"', '"MAYBE"', 1), "line"),
    ],
    ids=["empty", "garbage", "format", "version", "truncated", "type", "event", "id", "code"],
)
def test_bad_files_are_refused_with_a_clear_error(mangle: object, message: str) -> None:
    text = mangle(good_text())  # type: ignore[operator]
    with pytest.raises(TraceFileError, match=message):
        loads(text)


def test_a_missing_file_is_a_trace_file_error(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match="cannot read"):
        load(tmp_path / "nope.jsonl")


def test_error_codes_are_written_by_name() -> None:
    events, boot_record = recorded()
    assert '"error": "OK"' in dumps(events, boot_record)
    assert ErrorCode.OK.name == "OK"
