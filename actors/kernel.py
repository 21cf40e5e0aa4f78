"""The kernel actor: the task table and ``l4_task_new``, call by call as Fiasco does it.

``sys_task_new`` (``osfree-project/l4env kernel/fiasco/src/kern/syscalls.cpp@e91a37df:650-782``):
check the chief, delete an active dest with ``kill_task`` (thread.cpp@e91a37df:664-801,
post-order; each deleted space hands its dead children to its own chief,
space_index.cpp@e91a37df:131-160), then hand over (nil pager; the new chief must exist)
or create.  A separate, mutable implementation of ``protocols.kernel`` (tests compare
the two).  The kernel actor never waits on another actor: it starts thread actors and
stops them with ``block=False``, so no call graph can loop back into it.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors._runtime import Runtime
from actors.images import EIP_IDLE
from actors.thread import Observe, Trap, wellformed
from protocols import kernel as spec
from protocols.editions import Edition, Fix
from protocols.errors import ErrorCode
from protocols.ids import KERNEL_TASK, NIL_ID, RMGR_TASK, SIGMA0_TASK, ThreadId
from protocols.ipc import IpcError
from protocols.trace import Work

__all__ = ["KernelActor"]


class KernelActor(pykka.ThreadingActor):
    """Holds the task table; answers ``Trap`` (system calls) and ``Observe``."""

    use_daemon_thread = True

    def __init__(self, runtime: Runtime, task_count: int) -> None:
        super().__init__()
        self.runtime = runtime
        boot = spec.boot_state(task_count)
        self.task_count = task_count
        self.chief = [e.chief for e in boot.tasks]
        self.active = [e.active for e in boot.tasks]
        self.version = [e.version for e in boot.tasks]
        self.mcp = [e.mcp for e in boot.tasks]
        self.pager = [e.pager for e in boot.tasks]
        self.eip = [e.eip for e in boot.tasks]
        self.esp = [e.esp for e in boot.tasks]
        self.prio = [e.prio for e in boot.tasks]

    def on_start(self) -> None:
        """Start sigma0's and RMGR's threads (runs on the kernel's thread)."""
        for number in (SIGMA0_TASK, RMGR_TASK):
            self._start_thread(number)

    def on_receive(self, message: Any) -> Any:
        """System calls and observation (runs on the kernel's thread).

        A system call whose fields have the wrong types gets ``IpcError(EMALFORMED)``."""
        if type(message) is Trap:
            request = message.request
            if not wellformed(request):
                name = type(request).__name__
                return IpcError(code=ErrorCode.EMALFORMED, dest=NIL_ID, request=name)
            if isinstance(request, spec.TaskNew):
                return self.task_new(message.sender.task, request)
            if isinstance(request, spec.NChief):
                return spec.step(self.snapshot(), message.sender, request)[1]
            if isinstance(request, spec.ThreadSchedule):
                return self.thread_schedule(message.sender.task, request)
            return spec.TaskNewReply(task=NIL_ID)
        if type(message) is Observe:
            return self.snapshot()
        raise TypeError(f"kernel got a non-system-call {type(message).__name__}")

    # -- l4_task_new ------------------------------------------------------------------

    def task_new(self, caller: int, req: spec.TaskNew) -> spec.TaskNewReply:
        """``l4_task_new`` by a thread of task ``caller``."""
        n = req.dest.task
        self.runtime.trace.record(Work, task=KERNEL_TASK, unit="kernel.task_new")
        if not self._acceptable(req) or self.chief[n] != caller:
            return spec.TaskNewReply(task=NIL_ID)
        if req.pager.is_nil:
            assert isinstance(req.mcp_or_new_chief, ThreadId)
            heir = req.mcp_or_new_chief.task
            if self.edition.has(Fix.TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF):
                doomed = self._subtree(n) if self.active[n] else []
                if not self._exists(heir) or heir in doomed:
                    return spec.TaskNewReply(task=NIL_ID)
            if self.active[n]:
                self._kill_task(n)
            if not self._exists(heir):
                return spec.TaskNewReply(task=NIL_ID)
            self.chief[n] = heir
            return spec.TaskNewReply(task=ThreadId(n, 0, req.dest.version))
        assert isinstance(req.mcp_or_new_chief, int)
        if self.active[n]:
            self._kill_task(n)
        self.chief[n] = caller
        self.active[n] = True
        self.version[n] = req.dest.version
        self.mcp[n] = min(self.mcp[caller], req.mcp_or_new_chief)
        self.prio[n] = self.prio[caller]
        self.pager[n] = req.pager
        self.eip[n] = req.eip
        self.esp[n] = req.esp
        self.runtime.trace.record(Work, task=KERNEL_TASK, unit="kernel.task_create")
        self._start_thread(n)
        return spec.TaskNewReply(task=req.dest)

    @property
    def edition(self) -> Edition:
        """The rules this kernel runs by."""
        return self.runtime.edition

    def _exists(self, number: int) -> bool:
        return number < self.task_count and self.active[number]

    def thread_schedule(self, caller: int, req: spec.ThreadSchedule) -> spec.ThreadScheduleReply:
        """``l4_thread_schedule`` by a thread of task ``caller``: read (and set) dest's prio."""
        self.runtime.trace.record(Work, task=KERNEL_TASK, unit="kernel.thread_schedule")
        n = req.dest.task
        if (
            req.dest.lthread != 0
            or n >= self.task_count
            or not self.active[n]
            or self.version[n] != req.dest.version
        ):
            return spec.ThreadScheduleReply(prio=-1)
        old = self.prio[n]
        if req.prio < 0:
            return spec.ThreadScheduleReply(prio=old)
        if req.prio > spec.MAX_MCP or req.prio > self.mcp[caller]:
            return spec.ThreadScheduleReply(prio=-1)
        self.prio[n] = req.prio
        return spec.ThreadScheduleReply(prio=old)

    def _acceptable(self, req: spec.TaskNew) -> bool:
        dest = req.dest
        if dest.is_nil or dest.task >= self.task_count:
            return False
        other = req.mcp_or_new_chief
        if req.pager.is_nil:
            return isinstance(other, ThreadId)
        return type(other) is int and 0 <= other <= spec.MAX_MCP

    def _children(self) -> dict[int, set[int]]:
        below: dict[int, set[int]] = {}
        for t in range(self.task_count):
            if t != KERNEL_TASK and self.chief[t] != t:
                below.setdefault(self.chief[t], set()).add(t)
        return below

    def _subtree(self, number: int) -> list[int]:
        """``number`` and its active subtasks, parents before children (no recursion)."""
        below = self._children()
        order, stack, seen = [], [number], {number}
        while stack:
            t = stack.pop()
            order.append(t)
            for c in sorted(below.get(t, ())):
                if self.active[c] and c not in seen:
                    seen.add(c)
                    stack.append(c)
        return order

    def _kill_task(self, number: int) -> None:
        """Delete active ``number`` and its active subtasks, children first.

        Each deleted task keeps its chief and hands its inactive children to it."""
        below = self._children()
        for t in reversed(self._subtree(number)):
            chief = self.chief[t]
            self.runtime.trace.record(Work, task=KERNEL_TASK, unit="kernel.task_delete")
            self._set_inactive(t, chief=chief, version=self.version[t])
            for child in below.pop(t, set()):
                if not self.active[child] and self.chief[child] == t:
                    self.chief[child] = chief
                    below.setdefault(chief, set()).add(child)

    def _set_inactive(self, number: int, *, chief: int, version: int) -> None:
        if self.active[number]:
            for ref in self.runtime.unregister_task(number):
                ref.stop(block=False)
        self.chief[number] = chief
        self.active[number] = False
        self.version[number] = version
        self.mcp[number] = 0
        self.pager[number] = NIL_ID
        self.eip[number] = 0
        self.esp[number] = 0
        self.prio[number] = 0

    def _start_thread(self, number: int) -> None:
        tid = ThreadId(number, 0, self.version[number])
        image = self.runtime.images.get(self.eip[number]) or self.runtime.images[EIP_IDLE]
        ref = image(self.runtime, tid, self.pager[number])
        self.runtime.register(tid, ref)

    # -- observation ------------------------------------------------------------------

    def snapshot(self) -> spec.KernelState:
        """The task table as a ``protocols.kernel.KernelState`` value."""
        return spec.KernelState(
            tasks=tuple(
                spec.TaskEntry(
                    number=n,
                    chief=self.chief[n],
                    active=self.active[n],
                    version=self.version[n],
                    mcp=self.mcp[n],
                    pager=self.pager[n],
                    eip=self.eip[n],
                    esp=self.esp[n],
                    prio=self.prio[n],
                )
                for n in range(self.task_count)
            )
        )
