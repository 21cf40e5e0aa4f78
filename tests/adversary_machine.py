"""The adversary: a hostile client attacks the ownership system; nothing may give way.

``AdversaryMachine`` keeps the rules of ``OwnershipMachine`` (processes fork, exit and
fill the caches; the spec is compared after each of them) and adds ``attack``: the
scripted client, which never exits here, sends a request it has no right to make.  Each
attack must be refused with a typed error (an ``IpcError``, a reply whose ``error`` is
not ``OK``, or a nil ``l4_task_new`` reply) and must change nothing (the snapshots before
and after are equal).  Attacks, by kind (``KINDS``):

- ``foreign``: task-server, RMGR and kernel requests on tasks other clients own;
- ``cached``: start, stop, free or kill a task in an L4Linux cache;
- ``stale``: retired ids of reused tasks (an older version);
- ``out of range``: task numbers beyond the table (valid ids, absurd numbers);
- ``nil``: the nil id where a task is expected;
- ``malformed``: fields of the wrong type (``GetTask(number="5")``, ``Free(task=5)``, ...);
- ``wrong protocol``: a request to a server that does not speak it, a reply sent as a
  request, harness controls (``ExitEvent``, ``TsInit``) forged as IPC;
- ``absurd``: negative and huge numbers;
- ``server task``: ``l4_task_new``, ``GetTask`` and ``RmgrTaskNew`` on the tasks of the
  kernel, sigma0, RMGR, the task server and the L4Linux servers;
- ``double free``: free (through the task server, or with ``free2`` at RMGR in
  ``merged``) a task the client just freed;
- ``forged value``, ``old id``, ``from a process``: ``tests.adversary_kinds``.

``ATTEMPTS`` and ``SUCCEEDED`` count attacks by kind in this process.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from actors.faults import ExitEvent
from actors.l4linux import LinuxShutdown
from actors.task_server import TsInit
from protocols import kernel, rmgr
from protocols import linux as lx
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import (
    KERNEL_TASK,
    NIL_ID,
    RMGR_TASK,
    SIGMA0_TASK,
    TASK_COUNT,
    ThreadId,
    task_id,
)
from protocols.ipc import IpcError
from protocols.l4linux import Strategy
from scenarios.check.ownership_machine import TASKS, OwnershipMachine
from tests.adversary_kinds import EXTRA_KINDS, extra_attacks

__all__ = ["KINDS", "AdversaryMachine", "adversary_machine_for", "forge", "refused"]

KINDS = (
    "foreign",
    "cached",
    "stale",
    "out of range",
    "nil",
    "malformed",
    "wrong protocol",
    "absurd",
    "server task",
    "double free",
    *EXTRA_KINDS,
)
HUGE = 10**30
Attack = tuple[str, ThreadId, object]
"""(kind, destination or ``NIL_ID`` for a system call, message)."""


def forge(cls: type, **fields: Any) -> object:
    """A message of ``cls`` with these fields, bypassing any validation (as an attacker)."""
    inst: object = object.__new__(cls)
    for field in attrs.fields(cls):
        if field.name in fields:
            value = fields[field.name]
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            value = field.default.factory()
        else:
            value = field.default
        object.__setattr__(inst, field.name, value)
    return inst


def refused(reply: object) -> bool:
    """Whether ``reply`` is a typed refusal: IPC error, error code not OK, or nil task."""
    if isinstance(reply, IpcError):
        return True
    if isinstance(reply, kernel.TaskNewReply):
        return reply.task.is_nil
    error = getattr(reply, "error", None)
    return isinstance(error, ErrorCode) and error is not ErrorCode.OK


class AdversaryMachine(OwnershipMachine):
    """The ownership machine whose client attacks instead of exiting."""

    ATTEMPTS: ClassVar[Counter[str]] = Counter()
    SUCCEEDED: ClassVar[Counter[str]] = Counter()

    def client_exits(self) -> None:
        """Not a rule here: the attacker stays alive."""

    # -- what there is to attack ------------------------------------------------------

    def _mine(self, number: int) -> bool:
        snap, me = self.snap, self.client.task
        return (
            number == me
            or number in snap.tasks_of(me)
            or snap.kernel.chief_of(number) == me
            or snap.rmgr.owners[number] == me
        )

    def _foreign(self) -> list[ThreadId]:
        """Ids of user tasks someone else holds (free ones belong to no one)."""
        snap = self.snap
        return [
            e.id
            for e in snap.kernel.tasks[RMGR_TASK + 1 :]
            if snap.rmgr.owners[e.number] != rmgr.FREE and not self._mine(e.number)
        ]

    def _attacks(self) -> list[Attack]:
        snap, me = self.snap, self.client
        tsv = self.system.task_server
        rm = task_id(RMGR_TASK)
        servers = [snap.kernel.tasks[s.me].id for s in snap.linux]
        out: list[Attack] = []

        def stop(dest: ThreadId) -> kernel.TaskNew:
            return kernel.TaskNew(dest=dest, mcp_or_new_chief=me)

        def start(dest: ThreadId, mcp: int = kernel.MAX_MCP) -> object:
            return forge(kernel.TaskNew, dest=dest, mcp_or_new_chief=mcp, eip=0, pager=me)

        def on_task(kind: str, tid: ThreadId) -> None:
            out.extend([(kind, NIL_ID, stop(tid)), (kind, NIL_ID, start(tid))])
            out.append((kind, NIL_ID, kernel.TaskNew(dest=tid, mcp_or_new_chief=task_id(1))))
            if tsv is not None:
                out.extend(
                    (kind, tsv, m)
                    for m in (
                        ts.Kill(task=tid, options=ts.KillOption.FREE),
                        ts.KillRecursive(task=tid),
                        ts.Free(task=tid),
                        ts.Free2(task=tid),
                        ts.Create(task=tid, eip=0, pager=me),
                    )
                )
            if tid.task < TASKS and snap.rmgr.owners[tid.task] == rmgr.FREE:
                # A free task is no one's: taking it from RMGR is legitimate, and RMGR
                # answers OK to freeing it again (changing nothing).
                return
            out.extend(
                (kind, rm, m)
                for m in (
                    rmgr.FreeTask(number=tid.task),
                    rmgr.Free2(task=tid),
                    rmgr.RmgrTaskNew(dest=tid, mcp_or_chief=kernel.MAX_MCP, eip=0, pager=me),
                )
            )

        for tid in self._foreign():
            on_task("foreign", tid)
            out.append(("foreign", rm, rmgr.FreeTaskAll(owner=tid.task)))
            out.append(("foreign", rm, rmgr.FreeClient(owner=tid.task)))
        for server in snap.linux:
            for tid in server.cache:
                on_task("cached", tid.next_version())
                on_task("cached", tid)
            for old in server.retired:
                if not self._mine(old.task) and snap.kernel.tasks[old.task].id != old:
                    on_task("stale", old)
        for number in (TASKS, TASKS + 7, TASK_COUNT - 1):
            on_task("out of range", task_id(number))
        for number in (TASKS, TASK_COUNT, HUGE, -1):
            out.append(("out of range", rm, rmgr.GetTask(number=number)))
        on_task("nil", NIL_ID)
        if tsv is not None:
            out.append(("nil", tsv, ts.Create(task=task_id(9), eip=0, pager=NIL_ID)))
            out.append(("nil", tsv, ts.Owner(task=NIL_ID)))
        victim = self._foreign()[0] if self._foreign() else task_id(9)
        malformed: list[tuple[ThreadId, object]] = [
            (rm, forge(rmgr.GetTask, number="5")),
            (rm, forge(rmgr.GetTask, number=5.0)),
            (rm, forge(rmgr.GetTask, number=True)),
            (rm, forge(rmgr.FreeTask, number=None)),
            (rm, forge(rmgr.Free2, task=victim.task)),
            (rm, forge(rmgr.RmgrTaskNew, dest=victim, mcp_or_chief="x", eip=0, pager=me)),
            (NIL_ID, forge(kernel.TaskNew, dest=victim.task, mcp_or_new_chief=me)),
            (NIL_ID, forge(kernel.TaskNew, dest=victim, mcp_or_new_chief="me")),
            (NIL_ID, forge(kernel.TaskNew, dest=victim, mcp_or_new_chief=1, pager=(1, 2))),
            *((s, forge(lx.Kill, pid="1")) for s in servers),
            *((s, forge(lx.Read, fd=0, nbytes=b"x")) for s in servers),
        ]
        if tsv is not None:
            malformed += [
                (tsv, forge(ts.Free, task=victim.task)),
                (tsv, forge(ts.Kill, task=victim, options="FREE")),
                (tsv, forge(ts.Create, task=victim, eip=0, pager=me.task)),
                (tsv, forge(ts.Owner, task=str(victim))),
            ]
        out.extend(("malformed", dest, m) for dest, m in malformed)
        wrong: list[tuple[ThreadId, object]] = [
            (rm, lx.Fork()),
            (rm, kernel.TaskNew(dest=victim, mcp_or_new_chief=me)),
            (rm, rmgr.RmgrReply(error=ErrorCode.OK, task=victim)),
            (rm, ExitEvent(task=victim)),
            *(
                (s, ExitEvent(task=p.task))
                for s, lxs in zip(servers, snap.linux, strict=True)
                for p in lxs.processes
            ),
            *((s, LinuxShutdown()) for s in servers),
            *((s, ts.Allocate()) for s in servers),
            (task_id(SIGMA0_TASK), rmgr.GetTask(number=9)),
        ]
        if tsv is not None:
            wrong += [
                (tsv, rmgr.GetTask(number=victim.task)),
                (tsv, ExitEvent(task=victim)),
                (tsv, TsInit(managed=TASKS)),
                (tsv, ts.TsReply(error=ErrorCode.OK, task=victim)),
            ]
        out.extend(("wrong protocol", dest, m) for dest, m in wrong)
        absurd: list[tuple[ThreadId, object]] = [
            (rm, rmgr.GetTask(number=-HUGE)),
            (rm, rmgr.FreeTask(number=-1)),
            (rm, rmgr.FreeTaskAll(owner=-3)),
            (rm, rmgr.FreeTaskAll(owner=HUGE)),
            (rm, rmgr.FreeClient(owner=HUGE)),
            (NIL_ID, start(victim, mcp=HUGE)),
            (NIL_ID, start(victim, mcp=-1)),
            *((s, lx.Kill(pid=-1)) for s in servers),
            *((s, lx.Read(fd=HUGE, nbytes=-HUGE)) for s in servers),
            *((s, lx.Wait(pid=-HUGE)) for s in servers),
        ]
        if tsv is not None:
            absurd.append((tsv, ts.Create(task=victim, eip=-1, esp=HUGE, mcp=-HUGE, pager=me)))
        out.extend(("absurd", dest, m) for dest, m in absurd)
        own = [KERNEL_TASK, SIGMA0_TASK, RMGR_TASK, *(s.task for s in servers)]
        if tsv is not None:
            own.append(tsv.task)
        for number in own:
            tid = snap.kernel.tasks[number].id
            out.append(("server task", NIL_ID, stop(tid)))
            out.append(("server task", NIL_ID, start(tid)))
            out.append(("server task", rm, rmgr.GetTask(number=number)))
            out.append(
                (
                    "server task",
                    rm,
                    rmgr.RmgrTaskNew(dest=tid, mcp_or_chief=kernel.MAX_MCP, eip=0, pager=me),
                )
            )
        return out

    # -- attacks ----------------------------------------------------------------------

    def _attack(
        self, kind: str, dest: ThreadId, message: object, sender: ThreadId | None = None
    ) -> None:
        before = self.system.snapshot()
        got = self.system.perform(sender or self.client, dest, message)
        after = self.system.snapshot()
        AdversaryMachine.ATTEMPTS[kind] += 1
        ok = refused(got) and after == before
        if not ok:
            AdversaryMachine.SUCCEEDED[kind] += 1
        assert refused(got), f"{kind} attack {message!r} to {dest} was answered {got!r}"
        assert after == before, f"{kind} attack {message!r} to {dest} changed the system"
        self.snap = after

    @precondition(lambda self: self._client_alive())
    @rule(data=st.data())
    def attack(self, data: st.DataObject) -> None:
        """The client tries something it has no right to."""
        attacks = [(k, self.client, d, m) for k, d, m in self._attacks()]
        attacks += extra_attacks(self)
        kinds = sorted({kind for kind, _, _, _ in attacks} | {"double free"}, key=KINDS.index)
        chosen = data.draw(st.sampled_from(kinds), label="kind")
        if chosen == "double free":  # a kind of its own: legitimate steps, then the attack
            self._double_free()
            return
        pick = st.sampled_from([(s, d, m) for k, s, d, m in attacks if k == chosen])
        sender, dest, message = data.draw(pick, label="attack")
        self._attack(chosen, dest, message, sender)

    def _double_free(self) -> None:
        """The client gets a task, gives it back, then frees it again."""
        tsv = self.system.task_server
        if tsv is not None:
            got = self.system.perform(self.client, tsv, ts.Allocate())
            if not isinstance(got, ts.TsReply) or got.error is not ErrorCode.OK:
                return
            freed = self.system.perform(self.client, tsv, ts.Free(task=got.task))
            assert isinstance(freed, ts.TsReply) and freed.error is ErrorCode.OK, freed
            self._resync()
            self._attack("double free", tsv, ts.Free(task=got.task))
            return
        rm = task_id(RMGR_TASK)
        got = self.system.perform(self.client, rm, rmgr.AllocateChief())
        if not isinstance(got, rmgr.RmgrReply) or got.error is not ErrorCode.OK:
            return
        handed = self.system.syscall(
            self.client, kernel.TaskNew(dest=got.task, mcp_or_new_chief=rm)
        )
        assert not handed.task.is_nil, handed
        freed = self.system.perform(self.client, rm, rmgr.Free2(task=got.task))
        assert isinstance(freed, rmgr.RmgrReply) and freed.error is ErrorCode.OK, freed
        self._resync()
        self._attack("double free", rm, rmgr.Free2(task=got.task))

    def _resync(self) -> None:
        """After legitimate steps the rule made itself: the spec follows the actors."""
        self.snap = self.system.snapshot()
        self.model = self.snap


def adversary_machine_for(strategy: Strategy) -> type[AdversaryMachine]:
    """The adversary machine for one L4Linux strategy."""
    name = f"Adversary{strategy.name.title().replace('_', '')}Machine"
    return type(name, (AdversaryMachine,), {"STRATEGY": strategy})
