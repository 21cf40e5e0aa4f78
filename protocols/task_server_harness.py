"""The task server's rules that are not simple_ts's own but the model's harness: a task
server restarted after a crash (``recover``) and the events server's "this task died"
(``exit_event``).  simple_ts has neither (it gets no exit events and has no restart); the
choices are documented on each rule.  Both are written, like ``protocols.task_server``,
as their effect on the kernel's table, RMGR's books and the task server's records.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocols import kernel, rmgr
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, ThreadId, task_id
from protocols.task_server import (
    Step,
    TaskState,
    TsRecord,
    TsReply,
    TsState,
    _exit,
    _reclaim,
    _World,
    managed_numbers,
)

__all__ = ["exit_event", "recover"]


def exit_event(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    ts: TsState,
    dead: ThreadId,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> Step:
    """The harness's "task ``dead`` died" (not simple_ts, which gets no exit events; the
    actor's ``exit_event``): a managed task is handled as its ``exit``; any other client
    (a boot module such as an L4Linux server) is deleted through RMGR's trusted
    ``FreeClient`` and every number it owned is killed and freed as ``kill_recursive``
    would, so what it held comes back."""
    w = _World(ks, rs, ts, edition)
    if ts.record(dead.task) is not None:
        reply = _exit(w, dead)
        return w.ks, w.rs, w.ts, reply
    me = ks.tasks[ts.me].id
    w.ks, w.rs, got = rmgr.step(w.ks, w.rs, me, rmgr.FreeClient(owner=dead.task), edition=edition)
    if got.error is not ErrorCode.OK:
        return w.ks, w.rs, w.ts, TsReply(error=got.error)
    _reclaim(w, dead.task)
    return w.ks, w.rs, w.ts, TsReply(error=ErrorCode.OK)


def recover(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    me: int,
    managed: int,
    last: Mapping[int, ThreadId],
) -> tuple[kernel.KernelState, rmgr.RmgrState, TsState]:
    """The books a restarted task server rebuilds (not in the sources: simple_ts has no
    restart; a restarted simple_ts would run its init again, deleting every running task
    it manages).  The model's choice, from the kernel's table, RMGR's owners and ``last``
    (the last id per number, kept in task memory that survives the thread):

    * a number RMGR holds for someone else: ``RESERVED`` (as init would mark it);
    * a number RMGR holds free: taken as at init (free);
    * a number RMGR holds for the task server whose kernel chief is a client: used,
      owned by that chief (``CHIEF``); one RMGR is chief of, running under a live pager
      other than the task server: used, owned by its pager (``ALLOCATED``);
    * anything else is taken back -- inactive, RMGR its chief (deleted if running, its
      clan under RMGR) -- and free.

    Ids: the newer of the kernel's and ``last``.  Exit events are not recovered."""
    w = _World(ks, rs, TsState(me=me, records=()))
    records = []
    for n in managed_numbers(ks.task_count, managed):
        entry = ks.tasks[n]
        kept = last.get(n, task_id(n))
        newest = kept if kept.version >= entry.version else entry.id
        holder = rs.owners[n]
        if n == me or holder not in (rmgr.FREE, me):
            rec = TsRecord(number=n, id=newest, state=TaskState.RESERVED, terminating=True)
        elif holder == rmgr.FREE:
            if w.rmgr_grants(n):
                w.set_task(n, RMGR_TASK)
                rec = TsRecord(number=n, id=newest)
            else:
                rec = TsRecord(number=n, id=newest, state=TaskState.RESERVED, terminating=True)
        elif entry.chief not in (RMGR_TASK, me):
            rec = TsRecord(number=n, id=newest, owner=entry.chief, state=TaskState.CHIEF)
        elif (
            entry.active
            and entry.chief == RMGR_TASK
            and entry.pager.task != me
            and ks.is_active(entry.pager.task)
        ):
            rec = TsRecord(number=n, id=newest, owner=entry.pager.task, state=TaskState.ALLOCATED)
        else:
            if entry.active or entry.chief == me:
                w.set_task(n, RMGR_TASK)
            rec = TsRecord(number=n, id=newest)
        records.append(rec)
    return w.ks, w.rs, TsState(me=me, records=tuple(records))
