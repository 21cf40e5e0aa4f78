"""Native Linux: system calls trap into the kernel in the caller's space, no IPC."""

from __future__ import annotations

from actors.native_linux import FIRST_PID, NativeSystem
from protocols.errors import ErrorCode
from protocols.ids import KERNEL_TASK
from protocols.linux import Fork, ForkReply, Getpid, GetpidReply, Read, ReadReply
from protocols.trace import IpcCall, SpaceSwitch, Syscall, Touch, Work


def test_getpid_returns_the_callers_pid_without_ipc_or_switch() -> None:
    with NativeSystem() as world:
        reply = world.repeat(world.processes[0], Getpid(), 3)
        events = world.trace.events()
    assert reply == GetpidReply(pid=FIRST_PID)
    kinds = {type(e) for e in events}
    assert IpcCall not in kinds and SpaceSwitch not in kinds
    assert sum(1 for e in events if type(e) is Syscall) == 3
    assert [e.unit for e in events if type(e) is Work].count("linux.getpid") == 3


def test_the_kernel_touches_only_its_own_pages_and_the_process_its_loop() -> None:
    with NativeSystem() as world:
        world.repeat(world.processes[0], Getpid(), 1)
        touches = [e for e in world.trace.events() if type(e) is Touch]
    assert {(t.task, t.region) for t in touches} == {
        (FIRST_PID, "call"),
        (KERNEL_TASK, "entry"),
        (KERNEL_TASK, "getpid"),
    }


def test_fork_creates_a_child_that_exits_and_is_reaped() -> None:
    with NativeSystem() as world:
        reply = world.repeat(world.processes[0], Fork(), 2)
        units = [e.unit for e in world.trace.events() if type(e) is Work]
    assert isinstance(reply, ForkReply) and reply.error is ErrorCode.OK
    assert units.count("linux.fork") == units.count("linux.exit") == units.count("linux.wait") == 2


def test_a_blocking_read_waits_for_its_data() -> None:
    with NativeSystem() as world:
        reply = world.repeat(world.processes[0], Read(fd=0, nbytes=512), 1)
        units = [e.unit for e in world.trace.events() if type(e) is Work]
    assert reply == ReadReply(error=ErrorCode.OK, nbytes=512)
    assert units == ["linux.read", "wait.read"]


def test_two_processes_get_their_own_pids() -> None:
    with NativeSystem(processes=2) as world:
        a, b = world.processes
        assert world.repeat(a, Getpid(), 1) == GetpidReply(pid=a.task)
        assert world.repeat(b, Getpid(), 1) == GetpidReply(pid=b.task)
