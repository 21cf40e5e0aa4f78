"""The task server (L4Env ``simple_ts`` as of 2007-12) and its reference spec.

Sources: the server ``osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df``,
its interface ``osfree-project/l4env l4/pkg/generic_ts/idl/generic_ts.idl@e91a37df`` and
client library ``osfree-project/l4env l4/pkg/generic_ts/lib/clientlib@e91a37df``.  Every
rule below is stated as its *effect* on the tables -- the kernel's task table, RMGR's
owners, the task server's books -- and its reply, in both editions; the call-by-call
procedure lives only in ``actors.task_server``.  Messages and books are defined in
``protocols.task_server_msgs`` and re-exported here.

**The books** (main.c@e91a37df:35-68): per task number from ``TASK_FIRST`` = 10 on
(``task_cnt`` numbers, 64 by default) an owner (compared by task number,
``l4_task_equal``), the id last handed out, a *used* bit and a *terminating* bit.

**Init** (main.c:151-189).  For every managed number simple_ts asks RMGR for the task
(``rmgr_get_task``) and hands the kernel's chief right straight back to RMGR
(``l4_task_new(tid, RMGR, 0, 0, nil)`` with ``tid`` = its own id with the task number
replaced, so the kernel's version becomes the task server's own).  It never calls
``rmgr_free_task``: RMGR's books keep every managed number as the task server's for good.
A number RMGR refuses is marked used and terminating (``RESERVED``): never handed out,
never killed.  Numbers beyond the kernel's table are left out (in the source RMGR refuses
them, the same outcome).

**allocate / allocate2** (main.c:192-226, 386-437).  The lowest number whose used bit is
clear (or the number asked for) becomes used, owned by the caller, and its id's
``version_low`` (10 bits) is incremented, wrapping at 1024 (the 4 high bits never
change).  ``allocate`` touches nothing else: no RMGR call, no kernel call.  ``allocate2``
then has RMGR hand the task to the task server (RMGR deletes it if active; its clan
passes to RMGR) and makes the caller its chief, inactive, with the new version.  If RMGR
refuses (it is not the kernel's chief of the number), the reply is ``ENOTASK`` but the
number stays used and owned by the caller, who never learns it; RMGR's books change as
its own ``get_task`` rule says for a refusal (the source releases the number,
``osfree-project/l4env l4/pkg/roottask/server/src/rmgr.c@e91a37df:117-134``).  Source code
``-L4_ENOTASK`` -> ``ErrorCode.ENOTASK``.

**create** (main.c:505-567). The caller must own the number and name exactly the id
handed out (else ``-L4_EINVAL`` -> ``EINVAL``); a terminating number is ``-L4_EUSED`` ->
``EUSED``. The effect is RMGR's ``task_new`` rule (``protocols.rmgr``) for the task
server, refusal included; a refusal is answered ``EINVAL``. There is no "already
running" check: RMGR re-creates a running task. (The source then names the task at RMGR
and sets its priority, ``rmgr_set_task_id`` / ``rmgr_set_prio``, main.c:546-563; not
part of this rule yet.)

**free / free2** (main.c:228-245, 447-470).  Act on the task *number*; the id's version is
never compared.  Out of range: ``-L4_ENOTFOUND`` -> ``ENOTFOUND``; the caller not the
owner (an unused number has no owner): ``-L4_ENOTOWNER`` -> ``ENOTOWNER``.  The number
becomes unused and ownerless; the terminating bit, the kernel and RMGR are untouched
(a running task keeps running).  ``free2`` first applies the kernel's ``l4_task_new``
rule to ``l4_task_new(id, RMGR, 0, 0, nil)`` issued by the task server (the chief right
goes to RMGR if the task server holds it), whatever the caller and whatever the outcome
-- this happens even when the free itself is refused.

``hardened`` (``Fix.FREE_LEAVES_CHIEF_WITH_CLIENT``): the task server remembers which
numbers it handed out with ``allocate2``; ``free`` of one is ``ENOTCHIEF``, and ``free2``
of one frees it only if its ``l4_task_new`` gave the chief right to RMGR (``ENOTCHIEF``
otherwise).  No extra call: the source's ``l4_task_new`` result is checked.

``hardened``, found with the public API's capabilities (``protocols.findings``, plain tests;
no extra call on any normal path): ``DEAD_TASK_KEEPS_WHAT_IT_TOOK``: a ``kill`` or
``free2`` answered OK reclaims what the victim's number owns, as ``kill_recursive`` does
(main.c:359-377), and every reclaim then kills each orphan (a used number owned by an
unused one) once, in number order; ``FREE2_MOVES_CHIEF_FOR_ANYONE``: ``free2`` by anyone
but the owner is refused before its ``l4_task_new`` (main.c:462-470);
``SELF_KILL_FREES_OWNED_NUMBER``: ``kill`` with ``FREE`` by the victim itself (the
interface allows it) leaves a number someone else owns used and owned;
``HANDED_ON_TASK_OWNED_BY_THE_DEAD``: a number a reclaim cannot kill (a live task holds
its chief right) becomes ownerless, so no next incarnation of the dead owner inherits it.

**kill** (main.c:297-357, 578-594). Out of range: ``ENOTFOUND``; unused or terminating:
``-L4_EUNKNOWN`` -> ``EUNKNOWN``; allowed to the owner, the master (``-m``), the task
itself, anyone if the number is ownerless or with ``-a``; else ``ENOTOWNER``. With
events (``-e``) and without ``NOEV`` the terminating bit is set first. RMGR must be the
kernel's chief of the number (else ``EUNKNOWN``, RMGR's refusal rule applies as for
``allocate2``, and a terminating bit just set stays set). Effect: the task is inactive
with RMGR as chief and the *passed* id's version; if it was active its clan is inactive
under RMGR. ``FREE`` frees the number as ``free`` does. With events: one exit event; the
event server's acknowledgement is taken to come at once (main.c:712-749: RMGR frees what
the dead task held, ``rmgr_free_task_all``, the terminating bit clears, ``FREE`` frees).
``SYNC`` changes nothing else.

**kill_recursive / exit** (main.c:359-377, 603-644).  ``kill(victim, FREE)``; if that
succeeds, every used number the victim's number owns is killed the same way, depth
first in number order, with the victim's id as caller.  Written iteratively here (the
source recurses).  ``exit`` is ``kill_recursive`` of the caller by itself, refused with
``ENOTFOUND`` when the caller's number is terminating.  A caller outside the managed range
gets ``ENOTFOUND`` and nothing is reclaimed.  The source never replies to ``exit``
(``DICE_NO_REPLY``); the model answers (the caller is gone when it succeeded).

**owner** (main.c:646-664): the owner makes ``owner`` the owner (nil: ownerless); anyone
else, or an unused number: ``ENOTOWNER``.  **Recovery** (``recover``): the model's choice.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from protocols import kernel, rmgr
from protocols.editions import DEFAULT_EDITION, Edition, Fix
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, ThreadId, task_id
from protocols.task_server_msgs import (
    DEFAULT_MANAGED,
    EIP_TASK_SERVER,
    NO_OWNER,
    TASK_CNT_MAX,
    TASK_FIRST,
    VERSION_LOW,
    Allocate,
    AllocateChief,
    Create,
    Exit,
    Free,
    Free2,
    Kill,
    KillOption,
    KillRecursive,
    Owner,
    TaskState,
    TsInit,
    TsRecord,
    TsRecover,
    TsReply,
    TsRequest,
    TsState,
)

__all__ = [
    "DEFAULT_MANAGED",
    "EIP_TASK_SERVER",
    "NO_OWNER",
    "TASK_CNT_MAX",
    "TASK_FIRST",
    "VERSION_LOW",
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
    "TsInit",
    "TsRecord",
    "TsRecover",
    "TsReply",
    "TsRequest",
    "TsState",
    "init",
    "managed_numbers",
    "next_id",
    "exit_event",
    "recover",
    "step",
]


def next_id(tid: ThreadId) -> ThreadId:
    """``version_low++`` (main.c:208,224): the low 10 bits wrap, the high 4 stay."""
    high = tid.version - tid.version % VERSION_LOW
    return tid.with_version(high + (tid.version + 1) % VERSION_LOW)


def managed_numbers(task_count: int, managed: int) -> range:
    """The task numbers simple_ts manages: ``managed`` from ``TASK_FIRST``, within the table
    and at most ``TASK_CNT_MAX - TASK_FIRST`` of them (main.c@e91a37df:115-120)."""
    managed = min(managed, TASK_CNT_MAX - TASK_FIRST)
    return range(TASK_FIRST, min(TASK_FIRST + managed, task_count))


@attrs.define
class _World:
    """The three tables one rule changes."""

    ks: kernel.KernelState
    rs: rmgr.RmgrState
    ts: TsState
    edition: Edition = DEFAULT_EDITION

    def put(self, rec: TsRecord) -> None:
        self.ts = attrs.evolve(
            self.ts, records=tuple(rec if r.number == rec.number else r for r in self.ts.records)
        )

    def rmgr_grants(self, number: int) -> bool:
        """Whether RMGR hands ``number`` to the task server (``get_task``).  A refusal
        changes the tables as RMGR's own rule says (``protocols.rmgr``; in the source a
        refusal by the kernel also releases the number, rmgr.c@e91a37df:117-134), so it
        is taken from that rule, and so is a grant's (the holder byte and the quota it
        uses); ``set_task`` then says where the chief right ends up."""
        me = self.ks.tasks[self.ts.me].id
        ks, rs, reply = rmgr.step(
            self.ks, self.rs, me, rmgr.GetTask(number=number), edition=self.edition
        )
        self.ks, self.rs = ks, rs
        return reply.error is ErrorCode.OK

    def set_task(self, number: int, chief: int) -> None:
        """RMGR takes ``number`` for the task server (deleting it if active: its clan goes
        inactive under RMGR) and the task server makes ``chief`` its chief, inactive."""
        tasks = list(self.ks.tasks)
        if tasks[number].active:
            for m in kernel.clan_of(self.ks, number):
                tasks[m] = kernel.TaskEntry(
                    number=m, chief=RMGR_TASK, active=False, version=tasks[m].version
                )
        # A nil-pager l4_task_new leaves the version as it was (Fiasco keeps none for a
        # number without a task; see protocols.kernel).
        version = tasks[number].version
        tasks[number] = kernel.TaskEntry(number=number, chief=chief, active=False, version=version)
        self.ks = kernel.KernelState(tasks=tuple(tasks))
        owners = self.rs.owners
        self.rs = attrs.evolve(
            self.rs, owners=(*owners[:number], self.ts.me, *owners[number + 1 :])
        )

    def ts_task_new(self, dest: ThreadId, chief: int) -> bool:
        """The kernel's rule for ``l4_task_new(dest, chief, 0, 0, nil)`` by the task server;
        whether the kernel carried it out."""
        me = self.ks.tasks[self.ts.me].id
        self.ks, reply = kernel.step(
            self.ks,
            me,
            kernel.TaskNew(dest=dest.task_id, mcp_or_new_chief=task_id(chief)),
            edition=self.edition,
        )
        return isinstance(reply, kernel.TaskNewReply) and not reply.task.is_nil


def init(
    ks: kernel.KernelState, rs: rmgr.RmgrState, me: int, managed: int = DEFAULT_MANAGED
) -> tuple[kernel.KernelState, rmgr.RmgrState, TsState]:
    """The task server's init (main.c@e91a37df:151-189): every managed number RMGR grants
    becomes the task server's at RMGR, inactive with RMGR as the kernel's chief and the
    task server's own version; a refused one is ``RESERVED`` (used, terminating)."""
    w = _World(ks, rs, TsState(me=me, records=()))
    records = []
    for n in managed_numbers(ks.task_count, managed):
        if w.rmgr_grants(n):
            w.set_task(n, RMGR_TASK)
            records.append(TsRecord(number=n, id=task_id(n)))
        else:
            records.append(
                TsRecord(number=n, id=task_id(n), state=TaskState.RESERVED, terminating=True)
            )
    return w.ks, w.rs, TsState(me=me, records=tuple(records))


def _allocate(w: _World, caller: int, taskno: int, chief: bool) -> TsReply:
    if taskno:
        rec = w.ts.record(taskno)
        if rec is None or rec.used:
            return TsReply(error=ErrorCode.ENOTASK)
    else:
        free = [r for r in w.ts.records if not r.used]
        if not free:
            return TsReply(error=ErrorCode.ENOTASK)
        rec = free[0]
    new = next_id(rec.id)
    state = TaskState.CHIEF if chief else TaskState.ALLOCATED
    w.put(attrs.evolve(rec, id=new, owner=caller, state=state))
    if chief:
        # allocate2: the caller becomes the kernel's chief -- if RMGR grants the task.
        if not w.rmgr_grants(rec.number):
            return TsReply(error=ErrorCode.ENOTASK)
        w.set_task(rec.number, caller)
    return TsReply(error=ErrorCode.OK, task=new)


def _create(w: _World, caller: int, req: Create) -> TsReply:
    rec = w.ts.record(req.task.task)
    if rec is None or not rec.used or rec.owner != caller or rec.id != req.task:
        return TsReply(error=ErrorCode.EINVAL)
    if rec.terminating:
        return TsReply(error=ErrorCode.EUSED)
    me = w.ks.tasks[w.ts.me].id
    ks, rs, got = rmgr.step(
        w.ks,
        w.rs,
        me,
        rmgr.RmgrTaskNew(
            dest=rec.id, mcp_or_chief=req.mcp, esp=req.esp, eip=req.eip, pager=req.pager
        ),
        edition=w.edition,
    )
    # RMGR's rule decides the tables, refusal included (rmgr.c may release the number).
    w.ks, w.rs = ks, rs
    if got.error is not ErrorCode.OK or got.task.is_nil:
        return TsReply(error=ErrorCode.EINVAL)
    # Then RMGR's set_task_id (if named) and set_prio, their results ignored
    # (main.c@e91a37df:545-563): whatever their rules do to the tables, the reply is OK.
    if req.resname:
        w.ks, w.rs, _ = rmgr.step(
            w.ks, w.rs, me, rmgr.SetTaskId(name=req.resname, task=got.task), edition=w.edition
        )
    w.ks, w.rs, _ = rmgr.step(
        w.ks, w.rs, me, rmgr.SetPrio(task=got.task, prio=req.prio), edition=w.edition
    )
    return TsReply(error=ErrorCode.OK, task=got.task)


def _free(
    w: _World, caller: int, task: ThreadId, edition: Edition, *, back: bool = False
) -> TsReply:
    rec = w.ts.record(task.task)
    if rec is None:
        return TsReply(error=ErrorCode.ENOTFOUND)
    if rec.owner != caller:
        return TsReply(error=ErrorCode.ENOTOWNER)
    if not rec.used:
        return TsReply(error=ErrorCode.ENOTFOUND)
    # hardened: an allocate2 number is freed only by a free2 whose hand-back worked.
    fix = edition.has(Fix.FREE_LEAVES_CHIEF_WITH_CLIENT)
    if fix and rec.state is TaskState.CHIEF and not back:
        return TsReply(error=ErrorCode.ENOTCHIEF)
    w.put(attrs.evolve(rec, owner=NO_OWNER, state=TaskState.FREE))
    return TsReply(error=ErrorCode.OK)


def _free2(w: _World, caller: int, task: ThreadId, edition: Edition) -> TsReply:
    # The task server's l4_task_new(id, RMGR), whatever comes of it; then free (hardened:
    # only for the owner of a used number, else free's refusal, nothing moved).
    if edition.has(Fix.FREE2_MOVES_CHIEF_FOR_ANYONE):
        rec = w.ts.record(task.task)
        if rec is None or rec.owner != caller or not rec.used:
            return _free(w, caller, task, edition)
    back = w.ts_task_new(task, RMGR_TASK)
    return _free(w, caller, task, edition, back=back)


def _kill(w: _World, caller: int, task: ThreadId, options: KillOption) -> TsReply:
    rec = w.ts.record(task.task)
    if rec is None:
        return TsReply(error=ErrorCode.ENOTFOUND)
    if not rec.used or rec.terminating:
        return TsReply(error=ErrorCode.EUNKNOWN)
    ts = w.ts
    if not (ts.anykill or caller in (rec.owner, ts.master, task.task) or rec.owner == NO_OWNER):
        return TsReply(error=ErrorCode.ENOTOWNER)
    events = ts.events and KillOption.NOEV not in options
    if events:
        rec = attrs.evolve(rec, terminating=True)
        w.put(rec)
    if w.rmgr_grants(rec.number):
        # Deleted (its clan under RMGR), RMGR chief again.
        w.set_task(rec.number, RMGR_TASK)
    elif not (w.edition.has(Fix.KILL_NEEDS_RMGR_AS_CHIEF) and w.ts_task_new(task, RMGR_TASK)):
        # RMGR is not chief (the task server or a client is): nothing is deleted.
        return TsReply(error=ErrorCode.EUNKNOWN)
    if rec.state is TaskState.CHIEF:
        # The model's bookkeeping: RMGR is chief now, held as an allocate'd number.
        rec = attrs.evolve(rec, state=TaskState.ALLOCATED)
        w.put(rec)
    if events:
        # The acknowledgement: RMGR frees what the dead task held; the bit clears.
        me = w.ks.tasks[ts.me].id
        w.ks, w.rs, _ = rmgr.step(
            w.ks, w.rs, me, rmgr.FreeTaskAll(owner=rec.number), edition=w.edition
        )
        rec = attrs.evolve(rec, terminating=False)
        w.ts = attrs.evolve(w.ts, exit_events=w.ts.exit_events + 1)
        w.put(rec)
    # hardened: the task itself may die, but a number someone else owns stays theirs.
    self_kill = w.edition.has(Fix.SELF_KILL_FREES_OWNED_NUMBER) and caller == task.task
    if KillOption.FREE in options and not (self_kill and rec.owner not in (NO_OWNER, caller)):
        w.put(attrs.evolve(rec, owner=NO_OWNER, state=TaskState.FREE))
    return TsReply(error=ErrorCode.OK)


def _kill_recursive(w: _World, caller: int, victim: ThreadId) -> TsReply:
    # kill(victim, FREE); then, depth first in number order, every used number owned by
    # a killed one, with the killed one's id as caller (an explicit stack: no recursion).
    first = _kill(w, caller, victim, KillOption.FREE)
    if first.error is not ErrorCode.OK:
        return first
    _reclaim(w, victim.task)
    return TsReply(error=ErrorCode.OK)


def _reclaim(w: _World, owner: int) -> None:
    _reclaim_tree(w, owner)
    if not w.edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):
        return
    # hardened: then each orphan (used, owned by an unused number), in order, tried once.
    tried: set[int] = set()
    while True:
        orphan = next((r for r in w.ts.records if r.number not in tried and _orphan(w, r)), None)
        if orphan is None:
            return
        tried.add(orphan.number)
        if _kill(w, orphan.owner, orphan.id, KillOption.FREE).error is ErrorCode.OK:
            _reclaim_tree(w, orphan.number)
        else:
            _disown(w, orphan.number)


def _orphan(w: _World, rec: TsRecord) -> bool:
    owner = w.ts.record(rec.owner) if rec.owner != NO_OWNER else None
    return rec.used and owner is not None and not owner.used


def _reclaim_tree(w: _World, owner: int) -> None:
    numbers = [r.number for r in w.ts.records]
    stack = [(owner, 0)]
    while stack:
        owner, start = stack[-1]
        nxt = None
        for i in range(start, len(numbers)):
            rec = w.ts.record(numbers[i])
            if rec is not None and rec.used and rec.owner == owner:
                nxt = i
                break
        if nxt is None:
            stack.pop()
            continue
        stack[-1] = (owner, nxt + 1)
        child = w.ts.record(numbers[nxt])
        assert child is not None
        if _kill(w, owner, child.id, KillOption.FREE).error is ErrorCode.OK:
            stack.append((child.number, 0))
        else:
            _disown(w, child.number)


def _disown(w: _World, number: int) -> None:
    # hardened: a number the reclaim could not kill is left ownerless (HANDED_ON_TASK_...)
    rec = w.ts.record(number)
    if rec is not None and w.edition.has(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD):
        w.put(attrs.evolve(rec, owner=NO_OWNER))


def _reclaim_the_dead(w: _World, reply: TsReply, victim: ThreadId) -> None:
    # hardened (DEAD_TASK_KEEPS_WHAT_IT_TOOK): a dead victim's holdings are reclaimed.
    if reply.error is ErrorCode.OK and w.edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):
        _reclaim(w, victim.task)


def _exit(w: _World, caller: ThreadId) -> TsReply:
    rec = w.ts.record(caller.task)
    if rec is not None and rec.terminating:
        return TsReply(error=ErrorCode.ENOTFOUND)
    return _kill_recursive(w, caller.task, caller.task_id)


def _owner(w: _World, caller: int, task: ThreadId, owner: ThreadId) -> TsReply:
    rec = w.ts.record(task.task)
    if rec is None or not rec.used or rec.owner != caller:
        return TsReply(error=ErrorCode.ENOTOWNER)
    w.put(attrs.evolve(rec, owner=NO_OWNER if owner.is_nil else owner.task))
    return TsReply(error=ErrorCode.OK)


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
    """One task-server request by ``sender``: new kernel, RMGR and task-server states, reply.

    Some refusals change the tables too (``allocate2``, ``free2``, ``kill``: see above)."""
    w = _World(ks, rs, ts, edition)
    caller = sender.task
    reply: TsReply
    if isinstance(request, Allocate):
        reply = _allocate(w, caller, request.taskno, chief=False)
    elif isinstance(request, AllocateChief):
        reply = _allocate(w, caller, request.taskno, chief=True)
    elif isinstance(request, Create):
        reply = _create(w, caller, request)
    elif isinstance(request, Free):
        reply = _free(w, caller, request.task, edition)
    elif isinstance(request, Free2):
        reply = _free2(w, caller, request.task, edition)
        _reclaim_the_dead(w, reply, request.task)
    elif isinstance(request, Kill):
        reply = _kill(w, caller, request.task, request.options)
        _reclaim_the_dead(w, reply, request.task)
    elif isinstance(request, KillRecursive):
        reply = _kill_recursive(w, caller, request.task)
    elif isinstance(request, Exit):
        reply = _exit(w, sender)
    elif isinstance(request, Owner):
        reply = _owner(w, caller, request.task, request.owner)
    else:
        raise TypeError(f"not a task-server request: {type(request).__name__}")
    return w.ks, w.rs, w.ts, reply


from protocols.task_server_harness import exit_event, recover  # noqa: E402
