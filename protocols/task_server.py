"""The task server protocol (L4Env ``simple_ts``) and its reference spec.

REFERENCE.md section 4.  The task server manages task numbers on behalf of its clients:
it records ``{owner, id, state}`` per task number and does the RMGR and kernel calls
that start, stop and hand over tasks.  The spec is a pure step over the triple (kernel
state, RMGR state, task-server state), since every operation ends in RMGR requests and
``l4_task_new`` calls that the task server issues itself.

Decisions where the sources are silent or the model differs (each rule below says which):

* **Init.**  For each task number it manages (``DEFAULT_MANAGED`` = 64 from
  ``FIRST_USER_TASK`` on, like simple_ts, configurable up to every number RMGR can hand
  out) the task server asks RMGR for the task and gives it straight back; a number RMGR
  refuses (a boot module, or beyond the table) is not managed.  Giving back means handing
  the chief right back (``l4_task_new(id, RMGR, 0, 0, nil)``) and ``free_task``.  After
  init every managed task is free at RMGR.
* **Reservation at allocate.**  ``allocate`` and ``allocate_chief`` reserve the task at
  RMGR (``get_task``), so no one can take it from RMGR while a client owns it.  ``allocate``
  then hands the chief right back to RMGR (``l4_task_new(id, RMGR, 0, 0, nil)``) so RMGR
  can create the task later; ``allocate_chief`` hands it to the client instead.  A task
  RMGR refuses (someone took it directly from RMGR) is skipped; no free task is
  ``ENOMEM``.
* **Versions.**  The task server owns the version of the ids it hands out: ``allocate``
  and ``allocate_chief`` give out the recorded id with its version incremented (14-bit
  wrap is ignored: no run reuses a number 16384 times).  ``free2`` accepts the client's
  current id and keeps the larger version, because a client that restarted the task
  itself (the L4Linux task cache) has bumped the version past the record.
* **create** (start, RMGR stays chief) is for tasks from ``allocate`` only: the caller
  must be the owner (``ENOTOWNER``) and the id must be the one handed out (``EINVAL``);
  the task server asks RMGR to create it (``RmgrTaskNew``).  ``EUSED``: in simple_ts a
  task still terminating is refused.  In this deterministic model a kill completes before
  its reply (so ``SYNC`` changes nothing), and "still terminating" collapses into "still
  running": ``create`` on a running task is ``EUSED``.  On a task handed out with
  ``allocate_chief`` it is ``ENOTCHIEF`` (the client holds the right to start it).
* **kill** (owner or the task itself; ``ENOTOWNER`` otherwise, ``ENOTASK`` for an
  unowned task or a stale id): a running task is deleted by asking RMGR for it again --
  ``get_task`` by the owner re-transfers the chief right and deletes the active task
  (its clan passes to RMGR) -- and the chief right is handed straight back to RMGR.  A
  task handed out with ``allocate_chief`` can be killed only after its client handed the
  chief right to the task server (then it becomes an ``allocate``-d task); otherwise
  ``ENOTCHIEF``.  Options: ``FREE`` also frees the task; ``NOEV`` suppresses the exit
  event (counted in ``exit_events``); ``SYNC`` is accepted and changes nothing.
* **free** is for tasks that are not running (``EUSED`` if running, ``ENOTCHIEF`` for
  ``allocate_chief`` tasks); it frees the task at RMGR.  **free2** frees a task handed
  out with ``allocate_chief`` and gives the chief right back: it requires that the
  client first handed the chief right to the task server with
  ``l4_task_new(id, task_server, 0, 0, nil)``; otherwise ``ENOTCHIEF`` and no change.
* **exit** (the caller) and **kill_recursive** (owner or the task itself) first kill the
  victim -- a task the server started through RMGR, or (through RMGR's trusted
  ``FreeClient``) a client that RMGR started at boot -- so its clan passes to RMGR, then
  reclaim, recursively, every task the victim owned: delete it if running and free it
  at RMGR.  If the victim cannot be killed, nothing changes (``ENOTCHIEF``).
* Owners are task numbers (like chiefs); ``owner`` answers the owner's task number.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

import attrs

from protocols import kernel, rmgr
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, NIL_ID, RMGR_TASK, ThreadId, task_id

__all__ = [
    "TsRecover",
    "TsInit",
    "DEFAULT_MANAGED",
    "EIP_TASK_SERVER",
    "NO_OWNER",
    "Allocate",
    "AllocateChief",
    "Create",
    "Exit",
    "Free",
    "Free2",
    "Kill",
    "KillOption",
    "KillRecursive",
    "Owner",
    "TaskState",
    "TsRecord",
    "TsReply",
    "TsRequest",
    "TsState",
    "init",
    "step",
]

EIP_TASK_SERVER: Final = 0x2000
"""Start address of the task server's code (selects its image in the actor system)."""
DEFAULT_MANAGED: Final = 64
"""How many task numbers simple_ts manages by default."""
NO_OWNER: Final = -1
"""Owner value of a task number no client owns."""


class KillOption(enum.Flag):
    """Options of ``kill``: wait for the end, free as well, no exit event."""

    NONE = 0
    SYNC = 1
    FREE = 2
    NOEV = 4


class TaskState(enum.Enum):
    """Where a managed task stands, from the task server's point of view."""

    FREE = "free"
    ALLOCATED = "allocated"
    """Owned by a client via ``allocate``; inactive; RMGR is its chief."""
    RUNNING = "running"
    """Started by ``create``; RMGR is its chief."""
    CHIEF = "chief"
    """Handed out with ``allocate_chief``: the owner is its chief."""


@attrs.frozen(kw_only=True)
class Allocate:
    """Client to the task server: reserve a task for me (RMGR stays chief)."""


@attrs.frozen(kw_only=True)
class AllocateChief:
    """Client to the task server: reserve a task and make me its chief (``allocate2``)."""


@attrs.frozen(kw_only=True)
class Create:
    """Owner to the task server: start ``task`` (from ``allocate``) through RMGR."""

    task: ThreadId
    mcp: int = kernel.MAX_MCP
    eip: int = 0
    esp: int = 0
    pager: ThreadId = NIL_ID


@attrs.frozen(kw_only=True)
class Free:
    """Owner to the task server: give ``task`` (not running) back."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class Free2:
    """Owner to the task server: give back ``task`` from ``allocate_chief`` (chief handed back)."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class Kill:
    """Owner (or the task itself) to the task server: stop ``task``."""

    task: ThreadId
    options: KillOption = KillOption.NONE


@attrs.frozen(kw_only=True)
class KillRecursive:
    """Owner (or the task itself) to the task server: stop ``task`` and all it owns."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class Owner:
    """Anyone to the task server: who owns ``task``?"""

    task: ThreadId


@attrs.frozen(kw_only=True)
class Exit:
    """Client to the task server: I exit; stop me and reclaim everything I own."""


@attrs.frozen(kw_only=True)
class TsReply:
    """Task server to its client: an error code, the task concerned, or its owner."""

    error: ErrorCode
    task: ThreadId = NIL_ID
    owner: int = NO_OWNER


TsRequest: TypeAlias = (
    Allocate | AllocateChief | Create | Free | Free2 | Kill | KillRecursive | Owner | Exit
)


@attrs.frozen(kw_only=True)
class TsRecord:
    """The task server's record of one managed task number."""

    number: int
    id: ThreadId
    """The id last handed out (or learned at init)."""
    owner: int = NO_OWNER
    state: TaskState = TaskState.FREE


@attrs.frozen(kw_only=True)
class TsState:
    """The task server's books: its own task number and one record per managed task."""

    me: int
    records: tuple[TsRecord, ...]
    exit_events: int = 0
    """Exit events sent (kills without ``NOEV``)."""

    def record(self, number: int) -> TsRecord | None:
        """The record of task ``number``, or None if not managed."""
        for r in self.records:
            if r.number == number:
                return r
        return None

    def owned_by(self, owner: int) -> tuple[int, ...]:
        """Task numbers ``owner`` owns, sorted."""
        return tuple(r.number for r in self.records if r.owner == owner)


class _World:
    """A scratch copy of the three states that one spec step threads through its calls."""

    def __init__(self, ks: kernel.KernelState, rs: rmgr.RmgrState, ts: TsState) -> None:
        self.ks, self.rs, self.ts = ks, rs, ts
        self.me = task_id(ts.me)

    def rmgr(self, req: rmgr.RmgrRequest) -> rmgr.RmgrReply:
        self.ks, self.rs, reply = rmgr.step(self.ks, self.rs, self.me, req)
        return reply

    def task_new(self, dest: ThreadId, chief: int) -> bool:
        self.ks, reply = kernel.step(
            self.ks, self.me, kernel.TaskNew(dest=dest, mcp_or_new_chief=task_id(chief))
        )
        assert isinstance(reply, kernel.TaskNewReply)
        return not reply.task.is_nil

    def put(self, rec: TsRecord) -> None:
        self.ts = attrs.evolve(
            self.ts,
            records=tuple(rec if r.number == rec.number else r for r in self.ts.records),
        )

    def get(self, number: int) -> TsRecord:
        rec = self.ts.record(number)
        assert rec is not None
        return rec


def init(
    ks: kernel.KernelState, rs: rmgr.RmgrState, me: int, managed: int = DEFAULT_MANAGED
) -> tuple[kernel.KernelState, rmgr.RmgrState, TsState]:
    """The task server's init: get every task it manages from RMGR and give it back."""
    w = _World(ks, rs, TsState(me=me, records=()))
    records = []
    for n in range(FIRST_USER_TASK, min(FIRST_USER_TASK + managed, len(rs.owners))):
        got = w.rmgr(rmgr.GetTask(number=n))
        if got.error is not ErrorCode.OK:
            continue
        # RMGR frees a task only when it is its chief again: hand the right back first.
        ok = w.task_new(got.task, RMGR_TASK)
        assert ok, "the task server is chief right after get_task"
        freed = w.rmgr(rmgr.FreeTask(number=n))
        assert freed.error is ErrorCode.OK, freed
        records.append(TsRecord(number=n, id=got.task))
    return w.ks, w.rs, TsState(me=me, records=tuple(records))


def _allocate(w: _World, caller: int, chief: bool) -> TsReply:
    # Pick the lowest free record whose task RMGR still hands out; bump its version.
    for rec in w.ts.records:
        if rec.state is not TaskState.FREE:
            continue
        got = w.rmgr(rmgr.GetTask(number=rec.number))
        if got.error is not ErrorCode.OK:
            continue
        new = rec.id.next_version()
        # allocate: chief right back to RMGR; allocate_chief: to the client.
        ok = w.task_new(new, caller if chief else RMGR_TASK)
        assert ok, "the task server is chief right after get_task"
        state = TaskState.CHIEF if chief else TaskState.ALLOCATED
        w.put(attrs.evolve(rec, id=new, owner=caller, state=state))
        return TsReply(error=ErrorCode.OK, task=new)
    return TsReply(error=ErrorCode.ENOMEM)


def _owned(w: _World, caller: int, task: ThreadId, *, self_ok: bool) -> TsRecord | TsReply:
    """The record of ``task`` if ``caller`` may act on it, else the refusal."""
    rec = w.ts.record(task.task)
    if rec is None or task.lthread != 0:
        return TsReply(error=ErrorCode.EINVAL)
    if rec.owner == NO_OWNER or rec.id != task:
        return TsReply(error=ErrorCode.ENOTASK)
    if rec.owner != caller and not (self_ok and caller == task.task):
        return TsReply(error=ErrorCode.ENOTOWNER)
    return rec


def _create(w: _World, caller: int, req: Create) -> TsReply:
    # Only the owner, with the id it was given; not while running; not a chief-held task.
    rec = _owned(w, caller, req.task, self_ok=False)
    if isinstance(rec, TsReply):
        return rec
    if rec.state is TaskState.RUNNING:
        return TsReply(error=ErrorCode.EUSED)
    if rec.state is TaskState.CHIEF:
        return TsReply(error=ErrorCode.ENOTCHIEF)
    if req.pager.is_nil:
        return TsReply(error=ErrorCode.EINVAL)
    # RMGR creates the task and stays its chief.
    got = w.rmgr(
        rmgr.RmgrTaskNew(
            dest=rec.id, mcp_or_chief=req.mcp, esp=req.esp, eip=req.eip, pager=req.pager
        )
    )
    if got.error is not ErrorCode.OK:
        return TsReply(error=got.error)
    w.put(attrs.evolve(rec, state=TaskState.RUNNING))
    return TsReply(error=ErrorCode.OK, task=rec.id)


def _stop(w: _World, rec: TsRecord) -> bool:
    """Delete a running task (or take a chief-held one back); after it RMGR is chief."""
    if rec.state is TaskState.RUNNING:
        # get_task by the owner re-transfers the chief right and deletes the active task.
        got = w.rmgr(rmgr.GetTask(number=rec.number))
        if got.error is not ErrorCode.OK:
            return False
        ok = w.task_new(rec.id, RMGR_TASK)
        assert ok, "the task server is chief right after get_task"
    elif rec.state is TaskState.CHIEF and not w.task_new(rec.id, RMGR_TASK):
        return False
    w.put(attrs.evolve(rec, state=TaskState.ALLOCATED))
    return True


def _release(w: _World, rec: TsRecord) -> None:
    """Free an allocated (inactive, RMGR-chief) task at RMGR and in the books."""
    freed = w.rmgr(rmgr.FreeTask(number=rec.number))
    assert freed.error is ErrorCode.OK, freed
    w.put(attrs.evolve(rec, owner=NO_OWNER, state=TaskState.FREE))


def _kill(w: _World, caller: int, req: Kill) -> TsReply:
    # The owner or the task itself; a chief-held task only once its chief right is back.
    rec = _owned(w, caller, req.task, self_ok=True)
    if isinstance(rec, TsReply):
        return rec
    was_running = rec.state is TaskState.RUNNING
    if not _stop(w, rec):
        return TsReply(error=ErrorCode.ENOTCHIEF)
    if was_running and KillOption.NOEV not in req.options:
        w.ts = attrs.evolve(w.ts, exit_events=w.ts.exit_events + 1)
    if KillOption.FREE in req.options:
        _release(w, w.get(rec.number))
    return TsReply(error=ErrorCode.OK, task=rec.id)


def _free(w: _World, caller: int, task: ThreadId, two: bool) -> TsReply:
    # The owner only; free: not running, not chief-held; free2: the chief right is back.
    rec = w.ts.record(task.task)
    if rec is None or task.lthread != 0:
        return TsReply(error=ErrorCode.EINVAL)
    # free2 takes the client's current id, whose version may be past the record's.
    stale = rec.id.version > task.version if two else rec.id != task
    if rec.owner == NO_OWNER or stale:
        return TsReply(error=ErrorCode.ENOTASK)
    if rec.owner != caller:
        return TsReply(error=ErrorCode.ENOTOWNER)
    if rec.state is TaskState.RUNNING:
        return TsReply(error=ErrorCode.EUSED)
    if rec.state is TaskState.CHIEF:
        if not two:
            return TsReply(error=ErrorCode.ENOTCHIEF)
        # free2: the client must have handed the chief right to the task server.
        rec = attrs.evolve(rec, id=task)
        if not w.task_new(rec.id, RMGR_TASK):
            return TsReply(error=ErrorCode.ENOTCHIEF)
        rec = attrs.evolve(rec, state=TaskState.ALLOCATED)
        w.put(rec)
    _release(w, rec)
    return TsReply(error=ErrorCode.OK, task=rec.id)


def _kill_victim(w: _World, victim: int) -> bool:
    """Kill task ``victim``: a running managed task, or a client RMGR started."""
    rec = w.ts.record(victim)
    if rec is None:
        got = w.rmgr(rmgr.FreeClient(owner=victim))
        return got.error is ErrorCode.OK
    if rec.state is not TaskState.RUNNING:
        return False
    return _stop(w, rec)


def _reclaim(w: _World, owner: int) -> None:
    """Reclaim, recursively, every task ``owner`` owns: delete it if running, free it."""
    for number in w.ts.owned_by(owner):
        rec = w.get(number)
        if rec.state is TaskState.RUNNING:
            if not _stop(w, rec):
                continue
            _reclaim(w, number)
        elif rec.state is TaskState.CHIEF:
            # After the owner's death RMGR (its heir) is chief; the task may be active.
            got = w.rmgr(rmgr.GetTask(number=number))
            if got.error is ErrorCode.OK:
                ok = w.task_new(rec.id, RMGR_TASK)
                assert ok, "the task server is chief right after get_task"
            elif not w.task_new(rec.id, RMGR_TASK):
                continue
            w.put(attrs.evolve(rec, state=TaskState.ALLOCATED))
        _release(w, w.get(number))


def _kill_recursive(w: _World, caller: int, victim: ThreadId, exiting: bool) -> TsReply:
    # exit: the caller itself; kill_recursive: the owner or the task itself.
    if not exiting:
        rec = _owned(w, caller, victim, self_ok=True)
        if isinstance(rec, TsReply):
            return rec
    if not _kill_victim(w, victim.task):
        return TsReply(error=ErrorCode.ENOTCHIEF)
    _reclaim(w, victim.task)
    return TsReply(error=ErrorCode.OK, task=victim)


def _owner(w: _World, task: ThreadId) -> TsReply:
    rec = w.ts.record(task.task)
    if rec is None:
        return TsReply(error=ErrorCode.EINVAL)
    if rec.owner == NO_OWNER:
        return TsReply(error=ErrorCode.ENOTASK)
    return TsReply(error=ErrorCode.OK, task=rec.id, owner=rec.owner)


Step: TypeAlias = tuple[kernel.KernelState, rmgr.RmgrState, TsState, TsReply]


def step(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    ts: TsState,
    sender: ThreadId,
    request: TsRequest,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> Step:
    """One task-server request by ``sender``: new kernel, RMGR and task-server states, reply."""
    w = _World(ks, rs, ts)
    caller = sender.task
    reply: TsReply
    if isinstance(request, Allocate):
        reply = _allocate(w, caller, chief=False)
    elif isinstance(request, AllocateChief):
        reply = _allocate(w, caller, chief=True)
    elif isinstance(request, Create):
        reply = _create(w, caller, request)
    elif isinstance(request, Free):
        reply = _free(w, caller, request.task, two=False)
    elif isinstance(request, Free2):
        reply = _free(w, caller, request.task, two=True)
    elif isinstance(request, Kill):
        reply = _kill(w, caller, request)
    elif isinstance(request, KillRecursive):
        reply = _kill_recursive(w, caller, request.task, exiting=False)
    elif isinstance(request, Exit):
        reply = _kill_recursive(w, caller, sender.task_id, exiting=True)
    elif isinstance(request, Owner):
        reply = _owner(w, request.task)
    else:
        raise TypeError(f"not a task-server request: {type(request).__name__}")
    if reply.error is not ErrorCode.OK:
        # A refused request changes nothing.
        return ks, rs, ts, reply
    return w.ks, w.rs, w.ts, reply


@attrs.frozen(kw_only=True)
class TsInit:
    """Boot loader (harness) to the task server: learn ``managed`` task numbers from RMGR."""

    managed: int = DEFAULT_MANAGED
    by_count: bool = False
    """Ask RMGR for the count (``TaskCount``) instead of getting and freeing every task."""


@attrs.frozen(kw_only=True)
class TsRecover:
    """Harness to a restarted task server: rebuild your books from these two tables.

    The kernel's chief table and RMGR's owners, read when the new task server starts
    (a real one would read them from the kernel and RMGR; the harness hands it the
    snapshot so the kernel still never waits on anyone)."""

    kernel: kernel.KernelState
    rmgr: rmgr.RmgrState
    managed: int = DEFAULT_MANAGED
