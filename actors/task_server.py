"""The task server actor: L4Env's ``simple_ts`` (REFERENCE.md section 4).

A mutable implementation of ``protocols.task_server`` (whose module docstring states
every decision the model makes: reservation at allocate, versions, ``EUSED``, ``free2``,
kill and reclaim through RMGR).  Its calls go task server -> RMGR -> kernel, and it
traps into the kernel itself for the chief hand-overs; nothing calls back into it.
"""

from __future__ import annotations

from typing import Any

from actors import working_sets
from actors.faults import ExitEvent
from actors.thread import L4Thread, handles
from protocols import kernel, rmgr
from protocols import task_server as spec
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.task_server import NO_OWNER, TaskState, TsInit, TsRecover, TsReply

__all__ = ["TaskServer", "TsInit", "TsRecover"]


class _Rec:
    """One mutable record (owner, id, state) of a managed task number.

    The id of the last incarnation is kept in the task server's task memory (``page``),
    which outlives a crash of its thread: the only thing a restarted task server cannot
    read from the kernel (RMGR resets the version of a task it takes back)."""

    __slots__ = ("_page", "number", "owner", "state")

    def __init__(self, number: int, tid: ThreadId, page: dict[Any, Any]) -> None:
        self.number = number
        self._page = page
        self.id = tid
        self.owner = NO_OWNER
        self.state = TaskState.FREE

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
        self.page: dict[Any, Any] = self.runtime.memory.setdefault(self.tid.task, {})
        """Last id per task number, in task memory that survives a restart."""

    # -- boot -------------------------------------------------------------------------

    def on_control(self, message: Any) -> Any:
        """``TsInit`` from the harness (runs on the task server's thread)."""
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
            return self._kill_recursive(message.task.task, message.task, exiting=True)
        return super().on_control(message)

    def recover(self, ks: kernel.KernelState, rs: rmgr.RmgrState, managed: int) -> None:
        """Rebuild the books after a restart, from the chief table and RMGR's owners.

        A managed number RMGR holds free is a free record.  One RMGR holds for the task
        server is classified by the kernel: chief another task -> ``CHIEF`` owned by
        that chief (``allocate_chief``, a cache); chief RMGR and running with a live
        pager -> ``RUNNING`` owned by its pager (every ``Create`` in this model names
        its creator as pager; a task created with a stranger as pager is attributed to
        that pager).  What cannot be attributed (reserved but not running, chief the task
        server itself, running under a dead pager) is taken back and freed, so nothing
        is lost and nothing gets two owners; its former owner's next request on it gets
        a typed error.  Versions: the newer of the kernel's and the last id kept in task
        memory (so a stale id never names a later incarnation).  Exit events counted
        before the crash are not recovered."""
        me = self.tid.task
        self.records = {}
        self.exit_events = 0
        for n in range(FIRST_USER_TASK, min(FIRST_USER_TASK + managed, ks.task_count)):
            holder = rs.owners[n]
            if n == me or holder not in (rmgr.FREE, me):
                continue
            entry = ks.tasks[n]
            last = self.page.get(n, entry.id)
            newest = last if last.version >= entry.version else entry.id
            rec = self.records[n] = _Rec(n, newest, self.page)
            if holder == rmgr.FREE:
                continue
            if entry.chief not in (RMGR_TASK, me):
                rec.owner, rec.state = entry.chief, TaskState.CHIEF
                continue
            pager = entry.pager.task
            if entry.active and entry.chief == RMGR_TASK and pager != me and ks.is_active(pager):
                rec.owner, rec.state = pager, TaskState.RUNNING
                continue
            rec.state = TaskState.RUNNING if entry.chief == RMGR_TASK else TaskState.CHIEF
            if entry.active or entry.chief == me:
                ok = self._stop_task(rec)
                assert ok, f"the task server could not take back task {n}"
            self._release(rec)

    def _init_by_count(self, managed: int) -> None:
        """The seed's cheaper alternative: ask RMGR how many tasks exist, once."""
        got = self._rmgr(rmgr.TaskCount())
        assert got.error is ErrorCode.OK, got
        for n in range(FIRST_USER_TASK, min(FIRST_USER_TASK + managed, got.count)):
            self.records[n] = _Rec(n, task_id(n), self.page)

    def _init(self, managed: int) -> None:
        """Get every managed task from RMGR and give it straight back, to learn it exists."""
        n = FIRST_USER_TASK
        while n < FIRST_USER_TASK + managed:
            got = self._rmgr(rmgr.GetTask(number=n))
            if got.error is ErrorCode.EINVAL and n != self.tid.task:
                break  # beyond RMGR's table
            if got.error is ErrorCode.OK:
                ok = self._task_new(got.task, RMGR_TASK)
                assert ok, "the task server is chief right after get_task"
                freed = self._rmgr(rmgr.FreeTask(number=n))
                assert freed.error is ErrorCode.OK, freed
                self.records[n] = _Rec(n, got.task, self.page)
            n += 1

    # -- the calls it makes -----------------------------------------------------------

    def _rmgr(self, request: rmgr.RmgrRequest) -> rmgr.RmgrReply:
        reply = self.call(task_id(RMGR_TASK), request)
        if isinstance(reply, IpcError):
            return rmgr.RmgrReply(error=reply.code)
        assert isinstance(reply, rmgr.RmgrReply), reply
        return reply

    def _task_new(self, dest: ThreadId, chief: int) -> bool:
        reply = self.syscall(kernel.TaskNew(dest=dest, mcp_or_new_chief=task_id(chief)))
        return isinstance(reply, kernel.TaskNewReply) and not reply.task.is_nil

    # -- checks (mutants override these) ----------------------------------------------

    def may_act(self, rec: _Rec, caller: int, task: ThreadId, *, self_ok: bool) -> bool:
        """Whether ``caller`` may act on ``rec``: its owner, or (kill) the task itself."""
        return rec.owner == caller or (self_ok and caller == task.task)

    def _owned(self, caller: int, task: ThreadId, *, self_ok: bool) -> _Rec | TsReply:
        rec = self.records.get(task.task)
        if rec is None or task.lthread != 0:
            return TsReply(error=ErrorCode.EINVAL)
        if rec.owner == NO_OWNER or rec.id != task:
            return TsReply(error=ErrorCode.ENOTASK)
        if not self.may_act(rec, caller, task, self_ok=self_ok):
            return TsReply(error=ErrorCode.ENOTOWNER)
        return rec

    # -- requests ---------------------------------------------------------------------

    def _allocate(self, caller: int, chief: bool) -> TsReply:
        for n in sorted(self.records):
            rec = self.records[n]
            if rec.state is not TaskState.FREE:
                continue
            got = self._rmgr(rmgr.GetTask(number=n))
            if got.error is not ErrorCode.OK:
                continue
            new = self.next_id(rec)
            ok = self.hand_over(new, caller) if chief else self._task_new(new, RMGR_TASK)
            assert ok, "the task server is chief right after get_task"
            rec.id, rec.owner = new, caller
            rec.state = TaskState.CHIEF if chief else TaskState.ALLOCATED
            return TsReply(error=ErrorCode.OK, task=new)
        return TsReply(error=ErrorCode.ENOMEM)

    def hand_over(self, task: ThreadId, client: int) -> bool:
        """``allocate_chief``: make ``client`` the chief of inactive ``task``."""
        return self._task_new(task, client)

    def next_id(self, rec: _Rec) -> ThreadId:
        """The id of the task's next incarnation: the version bumped."""
        return rec.id.next_version()

    @handles(spec.Allocate)
    def allocate(self, sender: ThreadId, msg: spec.Allocate) -> TsReply:
        """Reserve a task for the sender; RMGR stays its chief."""
        return self._allocate(sender.task, chief=False)

    @handles(spec.AllocateChief)
    def allocate_chief(self, sender: ThreadId, msg: spec.AllocateChief) -> TsReply:
        """Reserve a task and make the sender its chief (``allocate2``)."""
        return self._allocate(sender.task, chief=True)

    @handles(spec.Create)
    def create(self, sender: ThreadId, msg: spec.Create) -> TsReply:
        """Start an allocated task through RMGR (RMGR stays chief)."""
        rec = self._owned(sender.task, msg.task, self_ok=False)
        if isinstance(rec, TsReply):
            return rec
        if rec.state is TaskState.RUNNING:
            return TsReply(error=ErrorCode.EUSED)
        if rec.state is TaskState.CHIEF:
            return TsReply(error=ErrorCode.ENOTCHIEF)
        if msg.pager.is_nil:
            return TsReply(error=ErrorCode.EINVAL)
        got = self._rmgr(
            rmgr.RmgrTaskNew(
                dest=rec.id, mcp_or_chief=msg.mcp, esp=msg.esp, eip=msg.eip, pager=msg.pager
            )
        )
        if got.error is not ErrorCode.OK:
            return TsReply(error=got.error)
        rec.state = TaskState.RUNNING
        return TsReply(error=ErrorCode.OK, task=rec.id)

    def _stop_task(self, rec: _Rec) -> bool:
        """Delete a running task (or take a chief-held one back); then RMGR is chief."""
        if rec.state is TaskState.RUNNING:
            got = self._rmgr(rmgr.GetTask(number=rec.number))
            if got.error is not ErrorCode.OK:
                return False
            ok = self._task_new(rec.id, RMGR_TASK)
            assert ok, "the task server is chief right after get_task"
        elif rec.state is TaskState.CHIEF and not self._task_new(rec.id, RMGR_TASK):
            return False
        rec.state = TaskState.ALLOCATED
        return True

    def _release(self, rec: _Rec) -> None:
        freed = self._rmgr(rmgr.FreeTask(number=rec.number))
        assert freed.error is ErrorCode.OK, freed
        rec.owner, rec.state = NO_OWNER, TaskState.FREE

    @handles(spec.Kill)
    def kill(self, sender: ThreadId, msg: spec.Kill) -> TsReply:
        """Stop a task (owner or the task itself); FREE also frees, NOEV: no exit event."""
        rec = self._owned(sender.task, msg.task, self_ok=True)
        if isinstance(rec, TsReply):
            return rec
        was_running = rec.state is TaskState.RUNNING
        if not self._stop_task(rec):
            return TsReply(error=ErrorCode.ENOTCHIEF)
        if was_running and spec.KillOption.NOEV not in msg.options:
            self.exit_events += 1
        if spec.KillOption.FREE in msg.options:
            self._release(rec)
        return TsReply(error=ErrorCode.OK, task=rec.id)

    def _free(self, caller: int, task: ThreadId, two: bool) -> TsReply:
        rec = self.records.get(task.task)
        if rec is None or task.lthread != 0:
            return TsReply(error=ErrorCode.EINVAL)
        stale = rec.id.version > task.version if two else rec.id != task
        if rec.owner == NO_OWNER or stale:
            return TsReply(error=ErrorCode.ENOTASK)
        if not self.may_act(rec, caller, task, self_ok=False):
            return TsReply(error=ErrorCode.ENOTOWNER)
        if rec.state is TaskState.RUNNING:
            return TsReply(error=ErrorCode.EUSED)
        if rec.state is TaskState.CHIEF:
            if not two:
                return TsReply(error=ErrorCode.ENOTCHIEF)
            if not self._task_new(task, RMGR_TASK):
                return TsReply(error=ErrorCode.ENOTCHIEF)
            rec.id, rec.state = task, TaskState.ALLOCATED
        self._release(rec)
        return TsReply(error=ErrorCode.OK, task=rec.id)

    @handles(spec.Free)
    def free(self, sender: ThreadId, msg: spec.Free) -> TsReply:
        """Give back a task that is not running (owner only)."""
        return self._free(sender.task, msg.task, two=False)

    @handles(spec.Free2)
    def free2(self, sender: ThreadId, msg: spec.Free2) -> TsReply:
        """Give back an ``allocate_chief`` task whose chief right the owner handed back."""
        return self._free(sender.task, msg.task, two=True)

    def _kill_victim(self, victim: int) -> bool:
        rec = self.records.get(victim)
        if rec is None:
            return self._rmgr(rmgr.FreeClient(owner=victim)).error is ErrorCode.OK
        if rec.state is not TaskState.RUNNING:
            return False
        return self._stop_task(rec)

    def reclaim(self, owner: int) -> None:
        """Reclaim, recursively, every task ``owner`` owns: delete it if running, free it."""
        for n in [m for m in sorted(self.records) if self.records[m].owner == owner]:
            rec = self.records[n]
            if rec.state is TaskState.RUNNING:
                if not self._stop_task(rec):
                    continue
                self.reclaim(n)
            elif rec.state is TaskState.CHIEF:
                got = self._rmgr(rmgr.GetTask(number=n))
                if got.error is ErrorCode.OK:
                    ok = self._task_new(rec.id, RMGR_TASK)
                    assert ok, "the task server is chief right after get_task"
                elif not self._task_new(rec.id, RMGR_TASK):
                    continue
                rec.state = TaskState.ALLOCATED
            self._release(rec)

    def _kill_recursive(self, caller: int, victim: ThreadId, exiting: bool) -> TsReply:
        if not exiting:
            rec = self._owned(caller, victim, self_ok=True)
            if isinstance(rec, TsReply):
                return rec
        if not self._kill_victim(victim.task):
            return TsReply(error=ErrorCode.ENOTCHIEF)
        self.reclaim(victim.task)
        return TsReply(error=ErrorCode.OK, task=victim)

    @handles(spec.KillRecursive)
    def kill_recursive(self, sender: ThreadId, msg: spec.KillRecursive) -> TsReply:
        """Stop a task and reclaim everything it owned, recursively."""
        return self._kill_recursive(sender.task, msg.task, exiting=False)

    @handles(spec.Exit)
    def exit(self, sender: ThreadId, msg: spec.Exit) -> TsReply:
        """The sender exits: stop it and reclaim everything it owned."""
        return self._kill_recursive(sender.task, sender.task_id, exiting=True)

    @handles(spec.Owner)
    def owner(self, sender: ThreadId, msg: spec.Owner) -> TsReply:
        """Who owns a task."""
        rec = self.records.get(msg.task.task)
        if rec is None:
            return TsReply(error=ErrorCode.EINVAL)
        if rec.owner == NO_OWNER:
            return TsReply(error=ErrorCode.ENOTASK)
        return TsReply(error=ErrorCode.OK, task=rec.id, owner=rec.owner)

    # -- observation ------------------------------------------------------------------

    def snapshot(self) -> spec.TsState:
        """The books as a ``protocols.task_server.TsState`` value."""
        return spec.TsState(
            me=self.tid.task,
            records=tuple(
                spec.TsRecord(number=r.number, id=r.id, owner=r.owner, state=r.state)
                for r in (self.records[n] for n in sorted(self.records))
            ),
            exit_events=self.exit_events,
        )
