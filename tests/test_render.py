"""scenarios.report.render: text, Mermaid and Perfetto views of a trace, validated as formats."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from actors import EIP_CLIENT, boot
from protocols import kernel
from protocols.ids import RMGR_TASK, SIGMA0_TASK, task_id
from protocols.rmgr import GetTask, RmgrTaskNew
from protocols.trace import Event
from scenarios.report.render import hops, render_mermaid, render_perfetto, render_text

PARTICIPANT = re.compile(r"^    participant (\w+) as [^;#\n]+$")
ARROW = re.compile(r"^    (\w+)(->>|-->>|-x)(\w+): [^;#\n]+$")


def recorded() -> tuple[Event, ...]:
    with boot(task_count=16, modules=(EIP_CLIENT, EIP_CLIENT)) as system:
        a, b = system.modules
        system.perform(a, task_id(RMGR_TASK), GetTask(number=9))
        system.syscall(
            a,
            kernel.TaskNew(
                dest=task_id(9, 2), mcp_or_new_chief=5, pager=task_id(SIGMA0_TASK), eip=EIP_CLIENT
            ),
        )
        system.perform(b, task_id(RMGR_TASK), RmgrTaskNew(dest=task_id(10, 1)))
        system.perform(b, task_id(13), GetTask(number=1))
        return system.trace.since(system.boot_mark)


def validate_mermaid(text: str) -> list[tuple[str, str, str]]:
    """A structural check of the sequenceDiagram subset l4sim writes; returns the arrows."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "sequenceDiagram"
    declared: set[str] = set()
    arrows = []
    for line in lines[1:]:
        if m := PARTICIPANT.match(line):
            declared.add(m.group(1))
        elif m := ARROW.match(line):
            assert m.group(1) in declared and m.group(3) in declared, line
            arrows.append((m.group(1), m.group(2), m.group(3)))
        else:
            assert line.startswith("    title "), f"not valid Mermaid here: {line!r}"
    return arrows


def validate_chrome_trace(data: dict[str, Any]) -> None:
    """The Trace Event Format as Perfetto reads it (JSON object form)."""
    json.dumps(data)  # serialisable
    assert isinstance(data["traceEvents"], list)
    last_end: dict[int, int] = {}
    for e in data["traceEvents"]:
        assert (
            isinstance(e["name"], str) and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        )
        assert e["ph"] in {"X", "i", "M"}
        if e["ph"] == "M":
            assert e["name"] in {"process_name", "thread_name"} and "name" in e["args"]
            continue
        assert isinstance(e["ts"], int) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] > 0
            assert e["ts"] >= last_end.get(e["tid"], 0), "slices on one track overlap"
            last_end[e["tid"]] = e["ts"] + e["dur"]
        else:
            assert e["s"] in {"t", "p", "g"}


def test_mermaid_is_a_valid_sequence_diagram_of_every_ipc() -> None:
    events = recorded()
    arrows = validate_mermaid(render_mermaid(events, {5: "client a", 6: "client b"}))
    calls = [a for a in arrows if a[1] == "->>"]
    assert ("t5", "->>", "t4") in calls and ("t5", "->>", "K") in calls
    assert ("t6", "-x", "t13") in arrows
    # every IpcCall, IpcReply and IpcFail is one arrow, every system call two (in and out)
    kinds = [type(e).__name__ for e in events]
    ipc = kinds.count("IpcCall") + kinds.count("IpcReply") + kinds.count("IpcFail")
    assert len(arrows) == ipc + 2 * kinds.count("Syscall")


def test_mermaid_shows_the_cycles_of_each_hop_when_priced() -> None:
    events = recorded()
    costs = [10 * (i + 1) for i in range(len(events))]
    text = render_mermaid(events, costs=costs)
    shown = [int(n) for n in re.findall(r"\[(\d+) cyc\]", text)]
    assert sum(shown) == sum(costs)
    assert [c for _e, c in hops(events, costs)] == shown


def test_perfetto_is_valid_chrome_trace_json_with_one_track_per_task() -> None:
    events = recorded()
    costs = [7] * len(events)
    data = render_perfetto(events, {5: "client a"}, costs)
    validate_chrome_trace(data)
    names = {e["args"]["name"] for e in data["traceEvents"] if e["name"] == "thread_name"}
    assert "client a (t5)" in names and "RMGR (t4)" in names
    slices = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(slices) == len(events) and sum(e["dur"] for e in slices) == 7 * len(events)


def test_unpriced_perfetto_uses_instant_events() -> None:
    data = render_perfetto(recorded())
    validate_chrome_trace(data)
    assert not [e for e in data["traceEvents"] if e["ph"] == "X"]


def test_text_has_one_line_per_event() -> None:
    events = recorded()
    lines = render_text(events).splitlines()
    assert len(lines) == len(events) and "FAIL" in lines[-1]


def test_costs_must_match_the_events() -> None:
    with pytest.raises(ValueError, match="costs for"):
        render_mermaid(recorded(), costs=[1, 2])


@pytest.mark.parametrize("strategy", ["classic", "chief", "chief+cache", "merged"])
def test_l4sim_trace_mermaid_of_each_fork_strategy_is_valid(
    strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenarios.cli import main

    assert main(["trace", "fork", "--strategy", strategy, "--format", "mermaid"]) == 0
    text = capsys.readouterr().out
    arrows = validate_mermaid(text)
    # a process (task 10 and up: simple_ts's numbers) calls L4Linux (task 6), or L4Linux
    # calls the task server (task 5)
    processes = {(f"t{n}", "->>", "t6") for n in range(10, 48)}
    assert processes & set(arrows) or ("t6", "->>", "t5") in arrows
    assert "L4Linux" in text and "[" in text and "cyc]" in text


def test_the_mermaid_diagram_names_processes_by_pid_and_shows_addresses_in_hex(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scenarios.cli import main

    argv = ["trace", "fork", "--strategy", "chief+cache", "-n", "3", "--format", "mermaid"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    participants = [line.strip() for line in text.splitlines() if "participant" in line]
    # init is pid 1; with the task cache the three children run in one task, one by one
    assert "participant t10 as pid 1 (t10)" in participants
    assert "participant t11 as pids 2, 3, 4 (t11)" in participants
    assert "eip=0x4000" in text and "eip=16384" not in text


@pytest.mark.parametrize(
    "argv",
    [["getpid"], ["getpid", "--mode", "native", "-n", "3"], ["read"], ["boot", "--by-count"]],
)
def test_l4sim_trace_perfetto_is_valid(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from scenarios.cli import main

    assert main(["trace", *argv, "--format", "perfetto"]) == 0
    data = json.loads(capsys.readouterr().out)
    validate_chrome_trace(data)
    assert [e for e in data["traceEvents"] if e["ph"] == "X"]


@pytest.mark.parametrize("strategy", ["classic", "chief", "chief+cache", "merged"])
def test_a_recorded_l4linux_trace_file_conforms(
    strategy: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenarios.cli import main

    path = tmp_path / "fork.jsonl"
    assert (
        main(
            [
                "trace",
                "fork",
                "-n",
                "3",
                "--strategy",
                strategy,
                "--format",
                "jsonl",
                "-o",
                str(path),
            ]
        )
        == 0
    )
    assert main(["check", str(path)]) == 0
    assert "conforms" in capsys.readouterr().out


def test_l4sim_trace_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from scenarios.cli import main

    assert main(["trace", "getpid", "--set", "tlb.bogus=1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["trace", "teleport"])
    assert exit_.value.code == 2
