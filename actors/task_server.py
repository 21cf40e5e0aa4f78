"""The task server actor: L4Env's ``simple_ts`` as of 2007-12.

A mutable implementation of ``protocols.task_server`` that makes the source's calls in
the source's order (``osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df``;
the spec states each rule as its effect on the tables, and cites the lines).  Its calls go
task server -> RMGR -> kernel, and it traps into the kernel itself for the chief
hand-overs; nothing calls back into it.
"""

from __future__ import annotations

from typing import Any

from actors import working_sets
from actors.faults import ExitEvent
from actors.thread import L4Thread, handles
from protocols import kernel, rmgr
from protocols import task_server as spec
from protocols.editions import Fix
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.task_server import (
    NO_OWNER,
    TASK_FIRST,
    KillOption,
    TaskState,
    TsInit,
    TsRecover,
    TsReply,
)

__all__ = ["TaskServer", "TsInit", "TsRecover"]


class _Rec:
    """One mutable record of a managed task number (``__task_t`` and its two bits).

    The id of the last incarnation is kept in the task server's task memory (``page``),
    which outlives a crash of its thread: the only thing a restarted task server cannot
    read from the kernel."""

    __slots__ = ("_page", "number", "owner", "state", "terminating")

    def __init__(self, number: int, tid: ThreadId, page: dict[Any, Any]) -> None:
        self.number = number
        self._page = page
        self.id = tid
        self.owner = NO_OWNER
        self.state = TaskState.FREE
        self.terminating = False

    @property
    def used(self) -> bool:
        """The ``task_used`` bit."""
        return self.state is not TaskState.FREE

    @property
    def id(self) -> ThreadId:
        """The id of the task's current (or last) incarnation."""
        tid: ThreadId = self._page[self.number]
        return tid

    @id.setter
    def id(self, tid: ThreadId) -> None:
        self._page[self.number] = tid


class TaskServer(L4Thread):
    """The task server's thread (a boot module started by RMGR)."""

    WORKING_SETS = working_sets.TASK_SERVER
    DISPATCH_WORK = "ts.request"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.records: dict[int, _Rec] = {}
        self.exit_events = 0
        self.events = False
        """``-e`` (main.c:94): off, as by default."""
        self.anykill = False
        self.master = NO_OWNER
        self.page: dict[Any, Any] = self.runtime.memory.setdefault(self.tid.task, {})
        """Last id per task number, in task memory that survives a restart."""

    # -- boot -------------------------------------------------------------------------

    def on_control(self, message: Any) -> Any:
        """``TsInit`` / ``TsRecover`` / ``ExitEvent`` from the harness."""
        if isinstance(message, TsInit):
            if message.by_count:
                self._init_by_count(message.managed)
            else:
                self._init(message.managed)
            return tuple(sorted(self.records))
        if isinstance(message, TsRecover):
            self.recover(message.kernel, message.rmgr, message.managed)
            return tuple(sorted(self.records))
        if isinstance(message, ExitEvent):
            return self.exit_event(message.task)
        return super().on_control(message)

    def exit_event(self, dead: ThreadId) -> TsReply:
        """The harness's "task died" (not simple_ts: it receives no exit events).  A managed
        task is handled as its ``exit``; a client RMGR started is deleted through RMGR's
        trusted ``FreeClient`` and what it owned is killed and freed as ``kill_recursive``
        would (so a crashed boot module's tasks come back)."""
        if dead.task in self.records:
            return self._exit(dead)
        got = self._rmgr(rmgr.FreeClient(owner=dead.task))
        if got.error is not ErrorCode.OK:
            return TsReply(error=got.error)
        self.reclaim(dead.task)
        return TsReply(error=ErrorCode.OK)

    def _new_rec(self, n: int, tid: ThreadId, *, reserved: bool = False) -> _Rec:
        rec = self.records[n] = _Rec(n, tid, self.page)
        if reserved:
            rec.state, rec.terminating = TaskState.RESERVED, True
        return rec

    def _get_and_give_back(self, n: int) -> bool:
        """``rmgr_get_task(n)``, then ``l4_task_new(n, RMGR, 0, 0, nil)`` (main.c:171-187)."""
        got = self._rmgr(rmgr.GetTask(number=n))
        if got.error is not ErrorCode.OK:
            return False
        self._task_new(task_id(n, self.tid.version), RMGR_TASK)
        return True

    def recover(self, ks: kernel.KernelState, rs: rmgr.RmgrState, managed: int) -> None:
        """Rebuild the books after a restart (``protocols.task_server.recover`` states the
        rule) from the kernel's table and RMGR's owners."""
        me = self.tid.task
        self.records = {}
        self.exit_events = 0
        for n in spec.managed_numbers(ks.task_count, managed):
            entry = ks.tasks[n]
            last = self.page.get(n, task_id(n))
            newest = last if last.version >= entry.version else entry.id
            holder = rs.owners[n]
            if n == me or holder not in (rmgr.FREE, me):
                self._new_rec(n, newest, reserved=True)
            elif holder == rmgr.FREE:
                self._new_rec(n, newest, reserved=not self._get_and_give_back(n))
            elif entry.chief not in (RMGR_TASK, me):
                rec = self._new_rec(n, newest)
                rec.owner, rec.state = entry.chief, TaskState.CHIEF
            elif (
                entry.active
                and entry.chief == RMGR_TASK
                and entry.pager.task != me
                and ks.is_active(entry.pager.task)
            ):
                rec = self._new_rec(n, newest)
                rec.owner, rec.state = entry.pager.task, TaskState.ALLOCATED
            else:
                if entry.active and entry.chief == RMGR_TASK:
                    got = self._rmgr(rmgr.GetTask(number=n))
                    assert got.error is ErrorCode.OK, got
                if entry.active or entry.chief == me:
                    self._task_new(newest, RMGR_TASK)
                self._new_rec(n, newest)

    def _init_by_count(self, managed: int) -> None:
        """The seed's cheaper alternative (not simple_ts): ask RMGR how many tasks exist."""
        got = self._rmgr(rmgr.TaskCount())
        assert got.error is ErrorCode.OK, got
        for n in range(TASK_FIRST, min(TASK_FIRST + managed, got.count)):
            self._new_rec(n, task_id(n))

    def _init(self, managed: int) -> None:
        """``task_init`` (main.c:151-189): get every managed number from RMGR, give the
        kernel's chief right back, never free it at RMGR; a refused number is reserved."""
        for n in range(TASK_FIRST, TASK_FIRST + min(managed, spec.TASK_CNT_MAX - TASK_FIRST)):
            got = self._rmgr(rmgr.GetTask(number=n))
            if got.error is ErrorCode.EINVAL:
                break  # beyond RMGR's table
            if got.error is ErrorCode.OK:
                self._task_new(task_id(n, self.tid.version), RMGR_TASK)
            self._new_rec(n, task_id(n), reserved=got.error is not ErrorCode.OK)

    # -- the calls it makes -----------------------------------------------------------

    def _rmgr(self, request: rmgr.RmgrRequest) -> rmgr.RmgrReply:
        reply = self.call(task_id(RMGR_TASK), request)
        if isinstance(reply, IpcError):
            return rmgr.RmgrReply(error=reply.code)
        assert isinstance(reply, rmgr.RmgrReply), reply
        return reply

    def _task_new(self, dest: ThreadId, chief: int) -> bool:
        reply = self.syscall(kernel.TaskNew(dest=dest.task_id, mcp_or_new_chief=task_id(chief)))
        return isinstance(reply, kernel.TaskNewReply) and not reply.task.is_nil

    # -- checks and steps (mutants override these) -------------------------------------

    def may_act(self, rec: _Rec, caller: int, task: ThreadId, *, self_ok: bool) -> bool:
        """kill's owner check (main.c:313-323): ``-a``, the owner, the master, the task
        itself, or no owner at all."""
        return (
            self.anykill
            or caller in (rec.owner, self.master)
            or (self_ok and caller == task.task)
            or rec.owner == NO_OWNER
        )

    def hand_over(self, task: ThreadId, client: int) -> bool:
        """``allocate2``: make ``client`` the chief of inactive ``task`` (main.c:428)."""
        return self._task_new(task, client)

    def next_id(self, rec: _Rec) -> ThreadId:
        """The id of the number's next incarnation: ``version_low`` bumped."""
        return spec.next_id(rec.id)

    # -- requests ---------------------------------------------------------------------

    def _alloc(self, caller: int, taskno: int) -> _Rec | None:
        """``task_alloc`` (main.c:192-226)."""
        if taskno:
            rec = self.records.get(taskno)
            if rec is None or rec.used:
                return None
        else:
            free = [self.records[n] for n in sorted(self.records) if not self.records[n].used]
            if not free:
                return None
            rec = free[0]
        rec.state, rec.owner, rec.id = TaskState.ALLOCATED, caller, self.next_id(rec)
        return rec

    @handles(spec.Allocate)
    def allocate(self, sender: ThreadId, msg: spec.Allocate) -> TsReply:
        """``allocate`` (main.c:386-400): a number, nothing else."""
        rec = self._alloc(sender.task, msg.taskno)
        if rec is None:
            return TsReply(error=ErrorCode.ENOTASK)
        return TsReply(error=ErrorCode.OK, task=rec.id)

    @handles(spec.AllocateChief)
    def allocate_chief(self, sender: ThreadId, msg: spec.AllocateChief) -> TsReply:
        """``allocate2`` (main.c:408-437): a number, then get_task and the chief right."""
        rec = self._alloc(sender.task, msg.taskno)
        if rec is None:
            return TsReply(error=ErrorCode.ENOTASK)
        rec.state = TaskState.CHIEF
        if self._rmgr(rmgr.GetTask(number=rec.number)).error is not ErrorCode.OK:
            return TsReply(error=ErrorCode.ENOTASK)
        self.hand_over(rec.id, sender.task)  # the source ignores the outcome
        return TsReply(error=ErrorCode.OK, task=rec.id)

    @handles(spec.Create)
    def create(self, sender: ThreadId, msg: spec.Create) -> TsReply:
        """``create`` (main.c:505-567) through RMGR's task_new."""
        rec = self.records.get(msg.task.task)
        if rec is None or not rec.used or rec.owner != sender.task or rec.id != msg.task:
            return TsReply(error=ErrorCode.EINVAL)
        if rec.terminating:
            return TsReply(error=ErrorCode.EUSED)
        got = self._rmgr(
            rmgr.RmgrTaskNew(
                dest=rec.id, mcp_or_chief=msg.mcp, esp=msg.esp, eip=msg.eip, pager=msg.pager
            )
        )
        if got.error is not ErrorCode.OK or got.task.is_nil:
            return TsReply(error=ErrorCode.EINVAL)
        # main.c@e91a37df:545-563: name it at RMGR (if named), set its priority; both
        # results are ignored.
        if msg.resname:
            self._rmgr(rmgr.SetTaskId(name=msg.resname, task=got.task))
        self._rmgr(rmgr.SetPrio(task=got.task, prio=msg.prio))
        return TsReply(error=ErrorCode.OK, task=got.task)

    def _free(self, caller: int, task: ThreadId, *, back: bool = False) -> TsReply:
        """``task_free`` (main.c:228-245): by number, local."""
        rec = self.records.get(task.task)
        if rec is None:
            return TsReply(error=ErrorCode.ENOTFOUND)
        if rec.owner != caller:
            return TsReply(error=ErrorCode.ENOTOWNER)
        if not rec.used:
            return TsReply(error=ErrorCode.ENOTFOUND)
        fix = self.edition.has(Fix.FREE_LEAVES_CHIEF_WITH_CLIENT)
        if fix and rec.state is TaskState.CHIEF and not back:
            return TsReply(error=ErrorCode.ENOTCHIEF)
        rec.owner, rec.state = NO_OWNER, TaskState.FREE
        return TsReply(error=ErrorCode.OK)

    @handles(spec.Free)
    def free(self, sender: ThreadId, msg: spec.Free) -> TsReply:
        """``free`` (main.c:447-452)."""
        return self._free(sender.task, msg.task)

    @handles(spec.Free2)
    def free2(self, sender: ThreadId, msg: spec.Free2) -> TsReply:
        """``free2`` (main.c:462-470): the chief right to RMGR (unchecked in l4env-2007),
        then free."""
        if self.edition.has(Fix.FREE2_MOVES_CHIEF_FOR_ANYONE):
            # hardened: a stranger's free2 is refused before anything moves
            rec = self.records.get(msg.task.task)
            if rec is None or rec.owner != sender.task or not rec.used:
                return self._free(sender.task, msg.task)
        back = self._task_new(msg.task, RMGR_TASK)
        return self._reclaim_the_dead(self._free(sender.task, msg.task, back=back), msg.task)

    def _kill(self, caller: int, task: ThreadId, options: KillOption) -> TsReply:
        """``task_kill`` (main.c:297-357)."""
        rec = self.records.get(task.task)
        if rec is None:
            return TsReply(error=ErrorCode.ENOTFOUND)
        if not rec.used or rec.terminating:
            return TsReply(error=ErrorCode.EUNKNOWN)
        if not self.may_act(rec, caller, task, self_ok=True):
            return TsReply(error=ErrorCode.ENOTOWNER)
        events = self.events and KillOption.NOEV not in options
        if events:
            rec.terminating = True
        if self._rmgr(rmgr.GetTask(number=rec.number)).error is ErrorCode.OK:
            self._task_new(task, RMGR_TASK)
        elif not (
            self.edition.has(Fix.KILL_NEEDS_RMGR_AS_CHIEF) and self._task_new(task, RMGR_TASK)
        ):
            # hardened: when the task server is chief itself (a client handed the right
            # back before free2), its own l4_task_new deletes and gives RMGR the right.
            return TsReply(error=ErrorCode.EUNKNOWN)
        if rec.state is TaskState.CHIEF:  # the model's bookkeeping: RMGR is chief now
            rec.state = TaskState.ALLOCATED
        if events:
            # The event server's acknowledgement, taken to come at once (main.c:712-749).
            self.exit_events += 1
            self._rmgr(rmgr.FreeTaskAll(owner=rec.number))
            rec.terminating = False
        self_kill_of_owned = (
            self.edition.has(Fix.SELF_KILL_FREES_OWNED_NUMBER)
            and caller == task.task
            and rec.owner not in (NO_OWNER, caller)
        )
        if KillOption.FREE in options and not self_kill_of_owned:
            # hardened: the task itself may die, but its owner's number stays the owner's.
            rec.owner, rec.state = NO_OWNER, TaskState.FREE
        return TsReply(error=ErrorCode.OK)

    @handles(spec.Kill)
    def kill(self, sender: ThreadId, msg: spec.Kill) -> TsReply:
        """``kill`` (main.c:578-594)."""
        return self._reclaim_the_dead(self._kill(sender.task, msg.task, msg.options), msg.task)

    def _reclaim_the_dead(self, reply: TsReply, victim: ThreadId) -> TsReply:
        """hardened (``DEAD_TASK_KEEPS_WHAT_IT_TOOK``): after a kill or free2 that worked,
        what the dead number took itself is reclaimed as ``kill_recursive`` does."""
        if reply.error is ErrorCode.OK and self.edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):
            self.reclaim(victim.task)
        return reply

    def reclaim(self, owner: int) -> None:
        """``reclaim_tree``; then, in ``hardened`` (``DEAD_TASK_KEEPS_WHAT_IT_TOOK``), every
        orphan once, in number order: a used number owned by a managed, unused number."""
        self.reclaim_tree(owner)
        if not self.edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):
            return
        tried: set[int] = set()
        while True:
            orphan = next(
                (
                    r
                    for n, r in sorted(self.records.items())
                    if n not in tried
                    and r.used
                    and r.owner in self.records
                    and not self.records[r.owner].used
                ),
                None,
            )
            if orphan is None:
                return
            tried.add(orphan.number)
            if self._kill(orphan.owner, orphan.id, KillOption.FREE).error is ErrorCode.OK:
                self.reclaim_tree(orphan.number)
            else:
                self._disown(orphan)

    def reclaim_tree(self, owner: int) -> None:
        """The loop of ``task_kill_recursive`` (main.c:370-374), without recursion: kill
        with ``FREE`` every used number a killed number owns, depth first in order."""
        numbers = sorted(self.records)
        stack = [(owner, 0)]
        while stack:
            killer, start = stack[-1]
            nxt = next(
                (
                    i
                    for i in range(start, len(numbers))
                    if self.records[numbers[i]].used and self.records[numbers[i]].owner == killer
                ),
                None,
            )
            if nxt is None:
                stack.pop()
                continue
            stack[-1] = (killer, nxt + 1)
            child = self.records[numbers[nxt]]
            if self._kill(killer, child.id, KillOption.FREE).error is ErrorCode.OK:
                stack.append((child.number, 0))
            else:
                self._disown(child)

    def _disown(self, rec: _Rec) -> None:
        """hardened (``HANDED_ON_TASK_OWNED_BY_THE_DEAD``): a number the reclaim could not
        kill (a live task holds its chief right) is left ownerless, not owned by the dead."""
        if self.edition.has(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD):
            rec.owner = NO_OWNER

    def _kill_recursive(self, caller: int, victim: ThreadId) -> TsReply:
        """``task_kill_recursive`` (main.c:359-377)."""
        first = self._kill(caller, victim, KillOption.FREE)
        if first.error is not ErrorCode.OK:
            return first
        self.reclaim(victim.task)
        return TsReply(error=ErrorCode.OK)

    @handles(spec.KillRecursive)
    def kill_recursive(self, sender: ThreadId, msg: spec.KillRecursive) -> TsReply:
        """``kill_recursive`` (main.c:634-644)."""
        return self._kill_recursive(sender.task, msg.task)

    def _exit(self, client: ThreadId) -> TsReply:
        rec = self.records.get(client.task)
        if rec is not None and rec.terminating:
            return TsReply(error=ErrorCode.ENOTFOUND)
        return self._kill_recursive(client.task, client.task_id)

    @handles(spec.Exit)
    def exit(self, sender: ThreadId, msg: spec.Exit) -> TsReply:
        """``exit`` (main.c:603-620); the source never replies, the model does."""
        return self._exit(sender)

    @handles(spec.Owner)
    def owner(self, sender: ThreadId, msg: spec.Owner) -> TsReply:
        """``owner`` (main.c:654-664): the owner hands the number to another owner."""
        rec = self.records.get(msg.task.task)
        if rec is None or not rec.used or rec.owner != sender.task:
            return TsReply(error=ErrorCode.ENOTOWNER)
        rec.owner = NO_OWNER if msg.owner.is_nil else msg.owner.task
        return TsReply(error=ErrorCode.OK)

    # -- observation ------------------------------------------------------------------

    def snapshot(self) -> spec.TsState:
        """The books as a ``protocols.task_server.TsState`` value."""
        return spec.TsState(
            me=self.tid.task,
            records=tuple(
                spec.TsRecord(
                    number=r.number,
                    id=r.id,
                    owner=r.owner,
                    state=r.state,
                    terminating=r.terminating,
                )
                for r in (self.records[n] for n in sorted(self.records))
            ),
            exit_events=self.exit_events,
            events=self.events,
            anykill=self.anykill,
            master=self.master,
        )
