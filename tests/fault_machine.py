"""The ownership machine with faults: crashes (between and during calls) and slow servers.

``FaultMachine`` keeps every rule of ``OwnershipMachine`` and adds fault rules.  Its
servers and processes are faulty images (``actors.faults.faulty``).  After a fault the
reference spec no longer describes the system (the spec has no crashes), so the machine
runs with ``COMPARE_WITH_SPEC = False``.  What it checks after every step, faults or not:

- the state invariants 1, 3, 4, 5, 6 and 7 (``invariants.check_all``) and the transition
  invariants 2 and 8 for every request a rule makes;
- nothing is lost: each user task number is free at RMGR, reserved by the task server,
  or held (owned or cached) by a task the kernel says is alive (``lost_tasks``);
- after a crash and before the exit event, the same state invariants hold (the dead
  thread's task is still alive in the kernel, so nothing is reclaimed yet);
- every faulted call returns a typed ``IpcError`` or a typed reply carrying an error
  code, within its timeout (plus ``SLACK``): nothing hangs.

Exit events: the harness plays the events server and sends ``ExitEvent`` to whoever
cleans up (the task server; RMGR when there is none; a process's L4Linux server).  A
crashed task server is restarted at once and rebuilds its books (``TsRecover``).
RMGR and the kernel are the trusted base: they are made slow, never crashed here
(``tests/test_faults.py`` shows callers of a dead RMGR get typed errors).
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from hypothesis import event, target
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from actors import EIP_CLIENT, System
from actors._runtime import ThreadFactory
from actors.client import ClientThread, Perform
from actors.faults import CrashNext, ExitEvent, Heal, SlowNext, crash_now, faulty
from actors.images import EIP_L4LINUX, EIP_PROCESS, EIP_TASK_SERVER, factory
from actors.l4linux import L4LinuxServer, LinuxShutdown
from actors.process import LinuxCall, ProcessThread
from actors.rmgr import RmgrActor
from actors.task_server import TaskServer, TsRecover
from protocols import invariants, rmgr
from protocols import linux as lx
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.kernel import EIP_RMGR
from protocols.l4linux import Strategy
from protocols.snapshot import SystemSnapshot
from scenarios.check.ownership_machine import OwnershipMachine

__all__ = ["FAULT_IMAGES", "FaultMachine", "fault_machine_for", "lost_tasks", "restart_task_server"]

SHORT = 0.05
"""Seconds a caller waits in a slow-server fault (short, so the suite stays fast)."""
SLOW_LIMIT = 2.0
"""Seconds a slow server blocks at most if nobody releases it."""
SLACK = 1.0
"""Seconds a faulted call may overrun its timeout (thread scheduling) before it is a hang."""

FAULT_IMAGES: dict[int, ThreadFactory] = {
    EIP_TASK_SERVER: factory(faulty(TaskServer)),
    EIP_L4LINUX: factory(faulty(L4LinuxServer)),
    EIP_PROCESS: factory(faulty(ProcessThread)),
    EIP_CLIENT: factory(faulty(ClientThread)),
    EIP_RMGR: factory(faulty(RmgrActor)),
}
"""Images whose threads obey fault controls (swapped in before boot)."""


def lost_tasks(snap: SystemSnapshot) -> tuple[int, ...]:
    """User task numbers in no valid place: a conflict, or held by a task that is not alive."""
    ks = snap.kernel
    tsv = snap.task_server
    lost = []
    for n in range(FIRST_USER_TASK, ks.task_count):
        place = invariants.place_of(snap, n)
        holder = snap.rmgr.owners[n]
        rec = tsv.record(n) if tsv is not None else None
        if rec is not None and rec.owner != ts.NO_OWNER:
            holder = rec.owner
        alive = holder in (rmgr.FREE, RMGR_TASK) or ks.is_active(holder)
        if place.startswith("conflict") or not alive:
            lost.append(n)
    return tuple(lost)


def restart_task_server(system: System) -> tuple[int, ...]:
    """Start a new task server actor under the crashed one's id; it rebuilds its books."""
    tid = system.task_server
    assert tid is not None, "no task server to restart"
    old = system.runtime.lookup(tid)
    assert old is not None, "the kernel deleted the task server"
    crash_now(old, system.config.timeout)
    pager = system.kernel_state().tasks[tid.task].pager
    new = system.runtime.images[EIP_TASK_SERVER](system.runtime, tid, pager)
    system.runtime.replace(tid, new)
    recover = TsRecover(
        kernel=system.kernel_state(), rmgr=system.rmgr_state(), managed=system.config.managed
    )
    return tuple(new.ask(recover, timeout=system.config.timeout * 4))


class FaultMachine(OwnershipMachine):
    """The ownership machine plus crashes, crashes mid-call, and slow servers."""

    IMAGES: ClassVar[dict[int, ThreadFactory]] = FAULT_IMAGES
    COMPARE_WITH_SPEC: ClassVar[bool] = False

    def __init__(self) -> None:
        self.worst_lost = 0
        """Most tasks lost at once in this run (the invariant demands 0)."""
        self.worst_overrun = 0.0
        """Longest time a faulted call took past its timeout, in seconds."""
        super().__init__()

    def teardown(self) -> None:
        # Hypothesis steers towards runs that lose tasks or overrun a timeout, and shows
        # the worst of each with --hypothesis-show-statistics (with the faults, by kind).
        target(self.worst_lost, label="tasks lost at once")
        target(self.worst_overrun, label="overrun of a faulted call (s)")
        super().teardown()

    # -- helpers ----------------------------------------------------------------------

    def _check(self) -> None:
        self.snap = self.system.snapshot()
        self.model = self.snap
        invariants.check_all(self.snap)
        lost = lost_tasks(self.snap)
        self.worst_lost = max(self.worst_lost, len(lost))
        assert not lost, f"tasks lost: {lost}"

    def _timed(self, limit: float, call: Any) -> object:
        start = time.monotonic()
        reply = call()
        overrun = time.monotonic() - start - limit
        self.worst_overrun = max(self.worst_overrun, overrun)
        assert overrun < SLACK, f"a faulted call took {overrun:.2f} s past its timeout: a hang"
        assert isinstance(reply, IpcError) or isinstance(
            getattr(reply, "error", None), ErrorCode
        ), f"untyped reply {reply!r}"
        return reply

    def _exit_event(self, dead: ThreadId) -> object:
        """The events server tells the cleaner that ``dead`` died (client or L4Linux)."""
        cleaner = self.system.task_server or task_id(RMGR_TASK)
        return self.system.ref(cleaner).ask(ExitEvent(task=dead), timeout=20)

    def _servers(self) -> list[ThreadId]:
        return [self.snap.kernel.tasks[s.me].id for s in self.snap.linux]

    # -- crashes between calls --------------------------------------------------------

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data())
    def crash_process(self, data: st.DataObject) -> None:
        """A process dies; its L4Linux server gets the exit event and ends it.

        If it was init, the L4Linux server panics and exits as a whole (as Linux does)."""
        server, proc = data.draw(st.sampled_from(self._running()), label="victim")
        event("fault", "crash process")
        crash_now(self.system.ref(proc), self.system.config.timeout)
        self._check()
        pager = self.system.ref(self._servers()[server])
        reply = pager.ask(ExitEvent(task=proc), timeout=20)
        if getattr(reply, "error", None) is ErrorCode.EINVAL:  # init died: panic
            event("fault", "init died: L4Linux panics")
            reply = pager.ask(LinuxShutdown(), timeout=20)
        assert getattr(reply, "error", None) is ErrorCode.OK, reply
        self._check()

    @precondition(lambda self: bool(self.snap.linux) and self.settled())
    @rule(data=st.data())
    def crash_linux_server(self, data: st.DataObject) -> None:
        """An L4Linux server dies; its tasks and cache are reclaimed."""
        victim = data.draw(st.sampled_from(self._servers()), label="server")
        event("fault", "crash L4Linux")
        crash_now(self.system.ref(victim), self.system.config.timeout)
        self._check()
        reply = self._exit_event(victim)
        assert getattr(reply, "error", None) is ErrorCode.OK, reply
        self._check()
        assert not self.snap.tasks_of(victim.task), "the dead server still holds tasks"

    @precondition(lambda self: self._client_alive() and self.settled())
    @rule()
    def crash_client(self) -> None:
        """The scripted client dies; everything it held is reclaimed."""
        event("fault", "crash client")
        crash_now(self.system.ref(self.client), self.system.config.timeout)
        self._check()
        reply = self._exit_event(self.client)
        assert getattr(reply, "error", None) is ErrorCode.OK, reply
        self._check()
        assert not self.snap.tasks_of(self.client.task), "the dead client still holds tasks"

    @precondition(lambda self: self.system.task_server is not None and self.settled())
    @rule()
    def crash_and_restart_task_server(self) -> None:
        """The task server dies between requests and is restarted."""
        event("fault", "crash task server")
        before = self.snap.task_server
        restart_task_server(self.system)
        self._check()
        after = self.snap.task_server
        assert before is not None and after is not None
        owners = {(r.number, r.owner) for r in after.records if r.owner != ts.NO_OWNER}
        was = {(r.number, r.owner) for r in before.records if r.owner != ts.NO_OWNER}
        assert owners <= was, f"restart invented owners: {sorted(owners - was)}"

    # -- crashes in the middle of a call chain ----------------------------------------

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data(), after=st.integers(0, 3))
    def crash_mid_call(self, data: st.DataObject, after: int) -> None:
        """A server dies while handling a process's fork: the process gets a typed error."""
        server, proc = data.draw(st.sampled_from(self._running()), label="process")
        wheres = ["L4Linux"] + (["task server"] if self.system.task_server is not None else [])
        where = data.draw(st.sampled_from(wheres), label="where")
        victim = self._servers()[server] if where == "L4Linux" else self.system.task_server
        assert victim is not None
        self.system.ref(victim).ask(CrashNext(after_calls=after), timeout=5)
        reply = self._timed(
            self.system.config.timeout * 4,
            lambda: self.system.ref(proc).ask(LinuxCall(request=lx.Fork()), timeout=30),
        )
        crashed = self.system.runtime.lookup(victim)
        assert crashed is not None
        if crashed.is_alive():  # the fork never reached it (served from the cache)
            crashed.ask(Heal(), timeout=5)
            self.snap = self.system.snapshot()
            self.model = self.snap
            return
        event("fault", f"crash {where} mid-call ({after} calls in)")
        if where == "L4Linux":
            assert isinstance(reply, IpcError) and reply.code is ErrorCode.EABORTED, reply
            self._check()
            self._exit_event(victim)
        else:
            restart_task_server(self.system)
        self._check()

    # -- slow servers -----------------------------------------------------------------

    @precondition(lambda self: self._client_alive())
    @rule(data=st.data())
    def slow_server(self, data: st.DataObject) -> None:
        """A server is slow past the caller's timeout: the caller gets ETIMEOUT in time."""
        targets: list[tuple[ThreadId, object]] = [
            (task_id(RMGR_TASK), rmgr.TaskCount()),
            *((s, lx.Getpid()) for s in self._servers()),
        ]
        if self.system.task_server is not None:
            targets.append((self.system.task_server, ts.Owner(task=task_id(FIRST_USER_TASK))))
        dest, request = data.draw(st.sampled_from(targets), label="slow")
        event("fault", "slow server")
        release = threading.Event()
        ref = self.system.ref(dest)
        ref.ask(SlowNext(release=release, limit=SLOW_LIMIT), timeout=5)
        try:
            reply = self._timed(
                SHORT,
                lambda: self.system.ref(self.client).ask(
                    Perform(dest=dest, message=request, timeout=SHORT), timeout=10
                ),
            )
        finally:
            release.set()
        assert isinstance(reply, IpcError) and reply.code is ErrorCode.ETIMEOUT, reply
        self._check()  # observing the slow server waits until it finished the request

    @rule()
    def look(self) -> None:
        """Observe the system (always possible, also after everything died)."""
        self._check()

    @invariant()
    def nothing_is_lost(self) -> None:
        """Every user task is free, reserved, or held by a live task."""
        assert not lost_tasks(self.snap), lost_tasks(self.snap)


def fault_machine_for(strategy: Strategy) -> type[FaultMachine]:
    """The fault machine for one L4Linux strategy."""
    name = f"Fault{strategy.name.title().replace('_', '')}Machine"
    return type(name, (FaultMachine,), {"STRATEGY": strategy})
