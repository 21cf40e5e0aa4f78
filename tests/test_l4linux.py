"""The L4Linux server and its processes, under each task-management strategy."""

from __future__ import annotations

import pytest

from actors import boot
from actors.l4linux import LinuxShutdown
from protocols import rmgr
from protocols.errors import ErrorCode
from protocols.ipc import IpcError
from protocols.l4linux import KILLED_STATUS, ProcState, Strategy
from protocols.linux import (
    Exit,
    ExitReply,
    Fork,
    ForkReply,
    Getpid,
    GetpidReply,
    Kill,
    Read,
    ReadReply,
    Wait,
    WaitReply,
)
from protocols.trace import Work

STRATEGIES = tuple(s.value for s in Strategy)
TASKS = 20


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fork_getpid_exit_wait(strategy: str) -> None:
    with boot(task_count=TASKS, linux=2, strategy=strategy, managed=TASKS, timeout=5.0) as s:
        init = s.init_processes[0]
        assert s.linux_call(init, Getpid()) == GetpidReply(pid=1)
        child = s.linux_call(init, Fork())
        assert isinstance(child, ForkReply) and child.error is ErrorCode.OK
        assert s.linux_call(child.task, Getpid()) == GetpidReply(pid=child.pid)
        assert s.linux_call(init, Wait()) == WaitReply(error=ErrorCode.OK, pid=0)
        assert s.linux_call(child.task, Exit(status=7)) == ExitReply(error=ErrorCode.OK)
        assert not s.kernel_state().is_active(child.task.task)
        assert s.linux_call(init, Wait()) == WaitReply(error=ErrorCode.OK, pid=child.pid, status=7)
        assert s.linux_call(init, Wait()).error is ErrorCode.ENOTASK
        assert s.linux_call(init, Read(fd=0, nbytes=3)) == ReadReply(error=ErrorCode.OK, nbytes=3)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_syscall_records_its_unit_of_work(strategy: str) -> None:
    with boot(task_count=TASKS, linux=1, strategy=strategy, timeout=5.0) as s:
        init = s.init_processes[0]
        mark = s.trace.mark()
        child = s.linux_call(init, Fork())
        for call in (Getpid(), Read(fd=0, nbytes=1), Exit()):
            s.linux_call(child.task, call)
        s.linux_call(init, Kill(pid=child.pid))
        s.linux_call(init, Wait())
        since = s.trace.since(mark)
        units = [e.unit for e in since if isinstance(e, Work) and e.unit.startswith("linux.")]
        assert units == [
            "linux.fork",
            "linux.getpid",
            "linux.read",
            "linux.exit",
            "linux.kill",
            "linux.wait",
        ]


def test_hardened_cache_reuses_a_task_with_a_new_version_and_the_old_id_is_dead() -> None:
    with boot(
        task_count=TASKS, linux=1, strategy="chief+cache", cache_size=1, edition="hardened"
    ) as s:
        init = s.init_processes[0]
        first = s.linux_call(init, Fork())
        (state,) = s.linux_states()
        assert state.slots == (first.task,) and state.cache == ()
        s.linux_call(first.task, Exit())
        (state,) = s.linux_states()
        assert state.cache == (first.task,)
        second = s.linux_call(init, Fork())
        assert second.task == first.task.next_version()
        assert s.linux_states()[0].cache == ()
        old = s.linux_call(first.task, Getpid())
        assert isinstance(old, IpcError) and old.code is ErrorCode.ENOT_EXISTENT


def test_a_full_cache_gives_the_task_back() -> None:
    with boot(task_count=TASKS, linux=1, strategy="chief+cache", cache_size=1) as s:
        init = s.init_processes[0]
        a, b = s.linux_call(init, Fork()), s.linux_call(init, Fork())
        s.linux_call(a.task, Exit())
        s.linux_call(b.task, Exit())
        assert s.linux_states()[0].cache == (a.task,)
        assert s.rmgr_state().owners[b.task.task] == rmgr.FREE


def test_kill_makes_a_zombie_with_the_killed_status_and_init_is_immortal() -> None:
    with boot(task_count=TASKS, linux=1, strategy="chief", timeout=5.0) as s:
        init = s.init_processes[0]
        child = s.linux_call(init, Fork())
        assert s.linux_call(child.task, Kill(pid=1)).error is ErrorCode.EINVAL
        assert s.linux_call(init, Exit()).error is ErrorCode.EINVAL
        assert s.linux_call(init, Kill(pid=child.pid)).error is ErrorCode.OK
        (state,) = s.linux_states()
        zombie = state.process(child.pid)
        assert zombie is not None and zombie.state is ProcState.ZOMBIE
        assert zombie.status == KILLED_STATUS


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shutdown_of_a_linux_server_reclaims_all_its_tasks(strategy: str) -> None:
    with boot(task_count=TASKS, linux=2, strategy=strategy, managed=TASKS, timeout=5.0) as s:
        init = s.init_processes[0]
        kids = [s.linux_call(init, Fork()) for _ in range(3)]
        s.linux_call(kids[0].task, Exit())
        reply = s.ref(s.linux[0]).ask(LinuxShutdown(), timeout=10)
        assert reply.error is ErrorCode.OK
        snap = s.snapshot()
        assert len(snap.linux) == 1
        for task in (s.linux[0], init, *(k.task for k in kids)):
            assert not snap.kernel.is_active(task.task)
            assert snap.rmgr.owners[task.task] == rmgr.FREE
