"""What the IPC path records for pricing: working sets touched and units of work."""

from __future__ import annotations

from actors import boot
from protocols.linux import Getpid
from protocols.trace import Event, IpcCall, IpcReply, SpaceSwitch, Touch, Work


def describe(e: Event) -> str:
    if isinstance(e, Touch):
        return f"touch {e.task}:{e.region}"
    if isinstance(e, Work):
        return f"work {e.task}:{e.unit}"
    if isinstance(e, SpaceSwitch):
        return f"switch {e.src}->{e.dst}"
    if isinstance(e, IpcCall | IpcReply):
        return f"{type(e).__name__} {e.src.task}->{e.dst.task}"
    return type(e).__name__


def test_one_l4linux_getpid_is_recorded_step_by_step() -> None:
    with boot(task_count=32, linux=1, timeout=5.0) as s:
        init, server = s.init_processes[0].task, s.linux[0].task
        mark = s.trace.mark()
        s.linux_call(s.init_processes[0], Getpid())
        steps = [describe(e) for e in s.trace.since(mark)]
    assert steps == [
        f"touch {init}:call",
        f"IpcCall {init}->{server}",
        f"switch {init}->{server}",
        f"touch {server}:dispatch",
        f"work {server}:l4linux.dispatch",
        f"touch {server}:linux.getpid",
        f"work {server}:linux.getpid",
        f"IpcReply {server}->{init}",
        f"switch {server}->{init}",
        f"touch {init}:call",
    ]


def test_the_kernel_records_task_creation_and_deletion() -> None:
    from protocols.linux import Exit, Fork

    with boot(task_count=32, linux=1, strategy="chief", timeout=5.0) as s:
        mark = s.trace.mark()
        child = s.linux_call(s.init_processes[0], Fork())
        s.linux_call(child.task, Exit())
        units = [e.unit for e in s.trace.since(mark) if isinstance(e, Work) and e.task == 0]
    assert units.count("kernel.task_create") == 1
    assert units.count("kernel.task_delete") == 1
    assert units.count("kernel.task_new") >= 2
