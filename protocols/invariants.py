"""The promises of chief ownership, as named functions over a snapshot of the system.

Each promise is stated as what a user of the real system is promised, then checked
over what the servers know (``protocols.snapshot.SystemSnapshot``: the kernel's task
table, RMGR's books, the task server's records, every L4Linux server's processes and
cache).  A function returns ``None`` when the promise holds or a one-line description of
the first violation; ``check_all`` runs every state invariant and raises
``InvariantViolation``.  The promises (numbers as in the project's first list):

1. *Someone can act on every task number*: every task number has exactly one chief and
   the chain of chiefs ends at the kernel (``every_task_has_exactly_one_chief``).
2. *Only the chief creates or deletes*: ``l4_task_new`` succeeds only for the chief of the
   task, and a refused call changes nothing (``task_new_succeeds_only_for_the_chief``).
3. *No task number is lost or in two places*: every task number is in exactly one place
   -- free at RMGR, reserved by the task server, owned by a client (running or
   inactive), or in a client's cache -- and a number that the books call free can be
   handed out again (``every_task_is_in_exactly_one_place``).  simple_ts keeps every
   number it manages reserved at RMGR for good and frees them only in its own books
   (osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:171-187,228-245),
   so "free" there means: unused in the task server's books, RMGR the kernel's chief
   (so ``create`` and ``allocate2`` can work) and not terminating (so ``create`` is not
   refused ``EUSED``, main.c:533-538).
4. *What you are given with allocate_chief you can start and stop*: an ``allocate_chief``
   answered OK leaves the caller the kernel's chief (``allocate_chief_makes_the_caller_
   chief``, per request), and the owner the task server (or RMGR, ``merged``) records
   for such a task is the kernel's chief, the task server (handed back for ``free2``),
   or -- while the owner lives -- any live task the right was handed on to
   (``the_owner_of_an_allocate_chief_task_is_its_chief``).  A record made ownerless
   with ``owner(task, nil)`` (main.c:654-664) promises no one anything and is skipped.

   *Restated*: it said "the owner is the chief (or the task server)". But the
   chief may give its right to any task: Fiasco's ``l4_task_new`` with a nil pager
   checks only that the caller is the chief and that the new chief exists
   (osfree-project/l4env kernel/fiasco/src/kern/syscalls.cpp@e91a37df:650-782, as
   ``protocols.kernel`` models it), and neither server is told. So a process that hands
   its allocate_chief task to RMGR or to its L4Linux server is the real kernel at work,
   not a broken promise, and in a snapshot it looks exactly like a server that kept the
   right. The promise is therefore checked where it is made, on the ``allocate_chief``
   reply, and in the state only against what no caller can cause: a dead chief of a
   live owner's task.  A dead owner's record is promise 7's to report (one violation,
   one promise).

5. *A cached task is yours alone*: it is inactive, its chief is the caching client, and
   no server can give it to anyone else (``cached_tasks_are_inactive_and_the_cachers``).
6. *An old id never reaches a new incarnation*: a process runs under the kernel's
   current id of its task, never under an id that an earlier incarnation had
   (``reused_tasks_get_a_new_version``); a process whose task is not active is dead
   and reaches nothing.

   *Restated*: it also said "every running process's task is active".  But
   a task may delete itself: simple_ts's ``kill`` is allowed to "the task itself"
   (osfree-project/l4env l4/pkg/generic_ts/idl/generic_ts.idl@e91a37df:94-100,
   main.c:297-357), and so is a process's own ``l4_task_new`` on a task it is chief
   of; L4Linux is not told (the real one learns at the process's next IPC).  A dead
   process runs under no id, so no old id reaches anything through it; an *active* task
   under another id than the process's is still a violation.
7. *When a client dies, what it held comes back*: no task is owned, held at RMGR or
   cached by a dead task (``exit_reclaims_everything``).

   *Restated*: it said "no task is owned by a dead task" without exception.
   But a dead task's chief right may sit with a live task that is no server: the dead
   one handed it on (any chief may, see 4), or its chief deleted it and the kernel
   handed the dead one's clan to the deleter (``protocols.kernel``;
   osfree-project/l4env kernel/fiasco/src/kern/space_index.cpp@e91a37df:131-160) --
   L4Linux deleting a child process that took a task with ``allocate_chief``.  Only
   the chief moves a chief right (syscalls.cpp@e91a37df:664-669), so no server can take
   that number back, and the live chief can start, stop or hand it back: it is not
   lost.  Such a number is exempt; a dead owner's number whose chief is dead, RMGR or the
   task server (which could and must reclaim it) is still a violation.  When the owner
   dies while a live task holds the right, ``hardened``'s reclaim cannot kill the number
   and leaves it ownerless at the task server (held by RMGR itself in ``merged``),
   ``Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD``: the holder may hand the right to RMGR and no
   server is told, so an owner kept there would be a dead one for good.  Where such a
   number is: used and ownerless at the task server, its right with the holder or RMGR
   (then anyone may ``kill`` it with ``FREE``: "the owner is not checked"); in
   ``merged`` held by RMGR, taken back by its next reclaim (``Free2``, ``FreeClient``,
   ``free_task``).

   *Restated* for what a dead number took while that number is not free: a
   number owned (or held at RMGR) by a dead task number is exempt while the books do not
   call that number free -- at the task server: used, by a live owner or by none; in
   ``merged``, at RMGR: held by a live task, RMGR included.  Legitimate moves leave this
   with no server told: the task cache's free hook takes a process's task back into the
   cache with no server call (osfree-project/l4env
   l4/pkg/task/examples/lx_task_cache/taskcache.c@552f19d0:74-88; the cached task stays
   owned by its L4Linux server at the task server); a chief deletes a sub-client it
   started with its own ``l4_task_new`` and keeps the number (syscalls.cpp@e91a37df:
   650-782); a process deletes itself (promise 6) and its server learns of it later.
   What the dead one took stays recorded under its number (simple_ts and RMGR compare
   owners by number, main.c@e91a37df:35-68), and no server can know of the death.  It is
   not lost: whoever gives the number back (``kill``, ``free2``, ``exit``; ``Free2``,
   ``FreeClient`` in ``merged``; a server's exit; anyone's ``kill`` of an ownerless
   number; RMGR's own sweep) reclaims it with the number in ``hardened``
   (``DEAD_TASK_KEEPS_WHAT_IT_TOOK`` follows the owners down), and a task started under
   the number again inherits it (under a new version in ``hardened``,
   ``TASK_CACHE_REUSES_OLD_ID``, but owners are numbers, as stated below).  The number
   it is recorded under is itself checked by this promise, so the chain ends at a live
   holder.  A give-back that does not follow the owners down leaves a dead owner whose
   number is free: a violation (``l4env-2007``).
8. *Only the owner (or the task itself) kills or frees a task through the servers*;
   RMGR's ``free_task_all`` only for the holder or a trusted client
   (``only_the_owner_kills_or_frees``); an ownerless task may be killed by anyone, as
   the interface says ("if set to nil, the owner is not checked",
   osfree-project/l4env l4/pkg/generic_ts/idl/generic_ts.idl@e91a37df:94-100).

What the servers cannot know: the kernel records chiefs by task number, not by
incarnation, and RMGR records owners by task number (in one byte in the sources), so
"alive" in 7 means "some task runs under that number now", which a new incarnation of a
dead owner's number satisfies; promise 6 is checked for the ids the servers remember
(each L4Linux server's retired ids of its own processes), not for ids held by
third parties, which no server can enumerate.
"""

from __future__ import annotations

from collections.abc import Callable

from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, KERNEL_TASK, RMGR_TASK, ThreadId
from protocols.l4linux import ProcState
from protocols.snapshot import SystemSnapshot

__all__ = [
    "STATE_INVARIANTS",
    "TRANSITION_INVARIANTS",
    "InvariantViolation",
    "cached_tasks_are_inactive_and_the_cachers",
    "allocate_chief_makes_the_caller_chief",
    "check_all",
    "check_transition",
    "every_task_has_exactly_one_chief",
    "every_task_is_in_exactly_one_place",
    "exit_reclaims_everything",
    "only_the_owner_kills_or_frees",
    "place_of",
    "reused_tasks_get_a_new_version",
    "task_new_succeeds_only_for_the_chief",
    "the_owner_of_an_allocate_chief_task_is_its_chief",
]


class InvariantViolation(AssertionError):
    """A named invariant does not hold."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


def every_task_has_exactly_one_chief(snap: SystemSnapshot) -> str | None:
    """Every task number has exactly one chief, and following chiefs leads to the kernel."""
    ks = snap.kernel
    for entry in ks.tasks:
        if entry.number == KERNEL_TASK:
            if entry.chief != KERNEL_TASK:
                return "the kernel task must be its own root"
            continue
        if not 0 <= entry.chief < ks.task_count or entry.chief == entry.number:
            return f"task {entry.number} has chief {entry.chief}"
        seen = {entry.number}
        chief = entry.chief
        while chief != KERNEL_TASK:
            if chief in seen:
                return f"chief cycle through task {entry.number}"
            seen.add(chief)
            chief = ks.chief_of(chief)
    return None


def task_new_succeeds_only_for_the_chief(
    before: kernel.KernelState,
    sender: ThreadId,
    request: kernel.TaskNew,
    reply: object,
    after: kernel.KernelState,
) -> str | None:
    """``l4_task_new`` succeeds only for the chief of the task; anything else changes nothing."""
    if not isinstance(reply, kernel.TaskNewReply):
        return f"l4_task_new answered {reply!r}"
    if reply.task.is_nil:
        if after != before:
            return f"refused l4_task_new({request.dest}) by {sender} changed the task table"
        return None
    if request.dest.task >= before.task_count or before.chief_of(request.dest.task) != sender.task:
        return f"l4_task_new({request.dest}) by non-chief {sender} succeeded"
    return None


def place_of(snap: SystemSnapshot, number: int) -> str:
    """Where task ``number`` is, by the servers' books: one place, or ``conflict: ...``."""
    owner = snap.rmgr.owners[number]
    tsv = snap.task_server
    rec = tsv.record(number) if tsv is not None else None
    if rec is not None and rec.owner != ts.NO_OWNER and (tsv is None or owner != tsv.me):
        return f"conflict: owned by {rec.owner} at the task server, by {owner} at RMGR"
    if owner == rmgr.FREE:
        base = "free at RMGR"
    elif tsv is not None and owner == tsv.me and number != tsv.me:
        if rec is None or rec.owner == ts.NO_OWNER:
            base = "reserved by the task server"
        else:
            base = f"owned by {rec.owner}"
    else:
        base = f"owned by {owner}"
    cachers = [lx.me for lx in snap.linux if any(t.task == number for t in lx.cache)]
    if len(cachers) > 1:
        return f"conflict: cached by {cachers}"
    if cachers:
        if base != f"owned by {cachers[0]}":
            return f"conflict: cached by {cachers[0]} but {base}"
        return f"cached by {cachers[0]}"
    return base


def every_task_is_in_exactly_one_place(snap: SystemSnapshot) -> str | None:
    """Every task number is in one place: free, reserved by the task server, owned, or cached."""
    ks = snap.kernel
    running: dict[int, tuple[int, int]] = {}
    for lx in snap.linux:
        for proc in lx.processes:
            if proc.state is not ProcState.RUNNING:
                continue
            n = proc.task.task
            if n in running:
                return f"task {n} runs process {running[n]} and ({lx.me}, pid {proc.pid})"
            running[n] = (lx.me, proc.pid)
    for n in range(FIRST_USER_TASK, ks.task_count):
        place = place_of(snap, n)
        if place.startswith("conflict"):
            return f"task {n}: {place}"
        if place == "free at RMGR" and (ks.is_active(n) or ks.chief_of(n) != RMGR_TASK):
            return f"task {n} is free at RMGR but its chief is {ks.chief_of(n)}"
        rec = snap.task_server.record(n) if snap.task_server is not None else None
        if rec is not None and not rec.used:
            # Free in the task server's books (which keep it reserved at RMGR for good):
            # the next allocate hands it out, so RMGR must be able to create it.
            if ks.chief_of(n) != RMGR_TASK:
                return f"task {n} is free at the task server but its chief is {ks.chief_of(n)}"
            if rec.terminating:
                return f"task {n} is free at the task server but still terminating"
        if n in running and place != f"owned by {running[n][0]}":
            return f"task {n} runs a process of {running[n][0]} but is {place}"
    return None


def the_owner_of_an_allocate_chief_task_is_its_chief(snap: SystemSnapshot) -> str | None:
    """For every task handed out with ``allocate_chief`` the owner is the kernel's chief."""
    ks = snap.kernel
    if snap.task_server is not None:
        for rec in snap.task_server.records:
            if rec.state is not ts.TaskState.CHIEF or rec.owner == ts.NO_OWNER:
                continue
            # The task server itself: the owner handed the right back for free2; any other
            # live task: the owner handed it on (restated: see the module docstring).
            chief = ks.chief_of(rec.number)
            if not ks.is_active(rec.owner):
                continue  # owned by the dead: promise 7's to report
            if chief not in (rec.owner, snap.task_server.me) and not ks.is_active(chief):
                return f"task {rec.number} owned by {rec.owner}, chief {ks.chief_of(rec.number)}"
    for n in sorted(snap.rmgr.handed):
        owner = snap.rmgr.owners[n]
        chief = ks.chief_of(n)
        if not ks.is_active(owner):
            continue  # held by the dead: promise 7's to report
        if chief not in (owner, RMGR_TASK) and not ks.is_active(chief):
            return f"task {n} handed to {owner} at RMGR, chief {ks.chief_of(n)}"
    return None


def cached_tasks_are_inactive_and_the_cachers(snap: SystemSnapshot) -> str | None:
    """A cached task is inactive, the caching client is its chief, and no one else holds it."""
    ks = snap.kernel
    for lx in snap.linux:
        if len(lx.cache) > lx.cache_size:
            return f"cache of {lx.me} holds {len(lx.cache)} > {lx.cache_size} tasks"
        for tid in lx.cache:
            n = tid.task
            if ks.is_active(n) or ks.chief_of(n) != lx.me:
                return (
                    f"task {n} cached by {lx.me}: active={ks.is_active(n)}, chief {ks.chief_of(n)}"
                )
            if place_of(snap, n) != f"cached by {lx.me}":
                return f"task {n} cached by {lx.me} is {place_of(snap, n)}"
            rec = snap.task_server.record(n) if snap.task_server is not None else None
            if rec is not None and rec.state is not ts.TaskState.CHIEF:
                return f"task {n} cached by {lx.me} is {rec.state.value} at the task server"
    return None


def reused_tasks_get_a_new_version(snap: SystemSnapshot) -> str | None:
    """No process runs under an id its server retired; each runs under the kernel's current id."""
    ks = snap.kernel
    for lx in snap.linux:
        for proc in lx.processes:
            if proc.state is not ProcState.RUNNING:
                continue
            if proc.task in lx.retired:
                return f"process {proc.pid} of {lx.me} runs under retired id {proc.task}"
            entry = ks.tasks[proc.task.task]
            if not entry.active:
                continue  # deleted by itself (restated: see the module docstring)
            if entry.id != proc.task:
                return f"process {proc.pid} of {lx.me} is {proc.task}, the kernel has {entry.id}"
    return None


def exit_reclaims_everything(snap: SystemSnapshot) -> str | None:
    """Every owner of a task (at RMGR, at the task server, or by caching it) is alive,
    unless a live task that is not a server holds the task's chief right, or the books
    do not call the dead owner's number free (restated: see the module docstring)."""
    ks = snap.kernel
    tsv = snap.task_server
    servers = {RMGR_TASK} | ({tsv.me} if tsv is not None else set())

    def number_held(owner: int) -> bool:
        # The dead owner's number is not free in the books: a live task (RMGR itself
        # included) holds it at RMGR, or it is used at the task server by a live owner or
        # by none (a cached task is owned there by its L4Linux server).
        if not FIRST_USER_TASK <= owner < ks.task_count:
            return False
        holder = snap.rmgr.owners[owner]
        if tsv is None and holder != rmgr.FREE and ks.is_active(holder):
            return True
        rec = tsv.record(owner) if tsv is not None else None
        return (
            rec is not None and rec.used and (rec.owner == ts.NO_OWNER or ks.is_active(rec.owner))
        )

    def held_on(n: int, owner: int) -> bool:
        chief = ks.chief_of(n)
        return (chief not in servers and ks.is_active(chief)) or number_held(owner)

    for n, owner in enumerate(snap.rmgr.owners):
        dead = n >= FIRST_USER_TASK and owner != rmgr.FREE and not ks.is_active(owner)
        if dead and not held_on(n, owner):
            return f"task {n} is still held at RMGR by dead task {owner}"
    if tsv is not None:
        for rec in tsv.records:
            dead = rec.owner != ts.NO_OWNER and not ks.is_active(rec.owner)
            if dead and not held_on(rec.number, rec.owner):
                return f"task {rec.number} still owned by dead task {rec.owner}"
    for lx in snap.linux:
        if not ks.is_active(lx.me) and (lx.cache or lx.processes):
            return f"dead L4Linux {lx.me} still holds tasks"
    return None


def allocate_chief_makes_the_caller_chief(
    sender: ThreadId, request: object, reply: object, after: SystemSnapshot
) -> str | None:
    """An ``allocate_chief`` answered OK leaves the caller the kernel's chief of the task
    (the half of invariant 4 that a snapshot cannot show once owners may hand rights on)."""
    if not isinstance(request, ts.AllocateChief | rmgr.AllocateChief):
        return None
    if getattr(reply, "error", None) is not ErrorCode.OK:
        return None
    task = getattr(reply, "task", None)
    if not isinstance(task, ThreadId) or task.task >= after.kernel.task_count:
        return f"allocate_chief by {sender} answered OK with {task!r}"
    chief = after.kernel.chief_of(task.task)
    if chief != sender.task:
        return f"allocate_chief by {sender} answered OK with {task}, chief {chief}"
    return None


def only_the_owner_kills_or_frees(
    before: SystemSnapshot, sender: ThreadId, request: object, reply: object
) -> str | None:
    """Only the owner (or the task itself) kills or frees a task through the task server."""
    error = getattr(reply, "error", None)
    if error is not ErrorCode.OK:
        return None
    if isinstance(request, ts.Kill | ts.KillRecursive | ts.Free | ts.Free2):
        tsv = before.task_server
        rec = tsv.record(request.task.task) if tsv is not None else None
        self_ok = isinstance(request, ts.Kill | ts.KillRecursive)
        if self_ok and rec is not None and rec.owner == ts.NO_OWNER:
            return None  # an ownerless task: "the owner is not checked" (the interface)
        if rec is None or not (
            rec.owner == sender.task or (self_ok and sender.task == request.task.task)
        ):
            owner = rec.owner if rec is not None else None
            return f"{type(request).__name__}({request.task}) by {sender} (owner {owner}) succeeded"
    if isinstance(request, rmgr.FreeTask | rmgr.Free2):
        number = request.number if isinstance(request, rmgr.FreeTask) else request.task.task
        owner = before.rmgr.owners[number]
        if owner not in (rmgr.FREE, sender.task):
            return f"RMGR {type(request).__name__}({number}) by {sender} (owner {owner}) succeeded"
    freed = getattr(reply, "count", 0)
    # Freeing what another holds at RMGR: the holder and trusted clients only.
    if (
        isinstance(request, rmgr.FreeTaskAll)
        and freed
        and sender.task not in (request.owner, *before.rmgr.trusted)
    ):
        return f"RMGR FreeTaskAll({request.owner}) by {sender} freed {freed}"
    return None


STATE_INVARIANTS: tuple[Callable[[SystemSnapshot], str | None], ...] = (
    every_task_has_exactly_one_chief,
    every_task_is_in_exactly_one_place,
    the_owner_of_an_allocate_chief_task_is_its_chief,
    cached_tasks_are_inactive_and_the_cachers,
    reused_tasks_get_a_new_version,
    exit_reclaims_everything,
)
"""Invariants 1, 3, 4, 5, 6 and 7 (module docstring): each holds in every snapshot."""

TRANSITION_INVARIANTS = (
    task_new_succeeds_only_for_the_chief,
    only_the_owner_kills_or_frees,
    allocate_chief_makes_the_caller_chief,
)
"""Invariants 2, 8 and the request half of 4: rules about one request."""


def check_all(snap: SystemSnapshot) -> None:
    """Raise ``InvariantViolation`` for the first state invariant that does not hold."""
    for invariant in STATE_INVARIANTS:
        detail = invariant(snap)
        if detail is not None:
            raise InvariantViolation(invariant.__name__, detail)


def check_transition(
    before: SystemSnapshot, sender: ThreadId, request: object, reply: object, after: SystemSnapshot
) -> None:
    """Raise ``InvariantViolation`` if request ``request`` by ``sender`` broke invariant 2 or 8."""
    if isinstance(request, kernel.TaskNew):
        detail = task_new_succeeds_only_for_the_chief(
            before.kernel, sender, request, reply, after.kernel
        )
        if detail is not None:
            raise InvariantViolation(task_new_succeeds_only_for_the_chief.__name__, detail)
    detail = only_the_owner_kills_or_frees(before, sender, request, reply)
    if detail is not None:
        raise InvariantViolation(only_the_owner_kills_or_frees.__name__, detail)
    detail = allocate_chief_makes_the_caller_chief(sender, request, reply, after)
    if detail is not None:
        raise InvariantViolation(allocate_chief_makes_the_caller_chief.__name__, detail)
