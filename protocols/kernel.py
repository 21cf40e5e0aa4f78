"""The kernel's task system calls and the reference spec of its task table.

Fiasco's ``l4_task_new`` as of 2007-12 (``osfree-project/l4env
kernel/fiasco/src/kern/syscalls.cpp@e91a37df:650-782``).  The spec is a pure function
``step(state, sender, request, edition=...) -> (state, reply)`` written as the effect
of a call on the task table; the kernel actor in ``actors.kernel`` is a separate,
mutable implementation that tests compare with it.

What the sources say, in our words:

* Rights: the caller's task must be the recorded chief of ``dest``'s task number, else
  nothing happens and the reply is nil (syscalls.cpp@e91a37df:664-669, 779).  Only the
  number counts: the kernel neither checks nor assigns versions.
* An active ``dest`` is deleted first (syscalls.cpp@e91a37df:671-684).  ``kill_task``
  deletes the task and, depth first, every *active* task whose chief is a deleted one
  (``osfree-project/l4env kernel/fiasco/src/kern/thread.cpp@e91a37df:664-801``).  Each
  deleted space leaves its number dead with its own chief kept and hands its dead
  children to that chief (``osfree-project/l4env
  kernel/fiasco/src/kern/space_index.cpp@e91a37df:131-160``, ``space.cpp@e91a37df:76-103``):
  deepest first, so level by level every task whose chief was deleted ends with the
  caller as chief.  A task whose chief is an inactive task is untouched.
* Nil pager: the number (now inactive) is handed to the task named by the second
  argument, which must exist *after* the deletion, else nil
  (syscalls.cpp@e91a37df:686-702).  The deletion is not undone: a refused call can have
  killed ``dest`` and its clan (finding ``TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF``;
  ``hardened`` checks the new chief before deleting anything).  The reply is ``dest``
  with lthread 0.
* A pager: a new task whose lthread 0 starts at (eip, esp) with that pager; the creator
  is its chief, its priority the creating thread's, its mcp the smaller of the
  creator's and the requested one (syscalls.cpp@e91a37df:704-777, 759-760).  The return
  registers are left alone, so the caller gets ``dest`` back as passed.
* Boot: numbers above 4 are inactive with chief 4 (RMGR), sigma0 (2) and RMGR (4) have
  the kernel (0) as chief (``osfree-project/l4env
  kernel/fiasco/src/kern/kernel_thread-std.cpp@e91a37df:14-58``).

Choices where the sources are silent or typed differently:

* ``TaskEntry.version`` is the version of the current or last incarnation.  Fiasco keeps
  no version for a number without a task, so a nil-pager call leaves it as it was.
* A second argument of the wrong kind (an int with a nil pager, an id with a pager), a
  nil ``dest`` or a number outside the table is refused before anything happens (the C
  code reinterprets the raw word; our messages are typed).  A nil new chief names task
  0, which never exists: refused after the deletion, like any absent chief.  ``dest``'s lthread is
  ignored, as in the sources (RMGR passes its caller's).
* Clan walks are iterative (a chain of chiefs as long as the table must work).
"""

from __future__ import annotations

from typing import Final, TypeAlias

import attrs

from protocols.editions import DEFAULT_EDITION, Edition, Fix
from protocols.ids import (
    FIRST_USER_TASK,
    KERNEL_TASK,
    NIL_ID,
    RMGR_TASK,
    SIGMA0_TASK,
    TASK_COUNT,
    ThreadId,
    task_id,
)

__all__ = [
    "EIP_RMGR",
    "EIP_SIGMA0",
    "MAX_MCP",
    "KernelReply",
    "KernelRequest",
    "KernelState",
    "NChief",
    "NChiefReply",
    "TaskEntry",
    "TaskNew",
    "TaskNewReply",
    "ThreadSchedule",
    "ThreadScheduleReply",
    "boot_state",
    "clan_of",
    "doomed",
    "step",
]

MAX_MCP: Final = 255
EIP_SIGMA0: Final = 0x100
"""Start address of sigma0's code (selects its image in the actor system)."""
EIP_RMGR: Final = 0x400
"""Start address of RMGR's code."""


@attrs.frozen(kw_only=True)
class TaskNew:
    """Any thread to the kernel: ``l4_task_new(dest, mcp_or_new_chief, esp, eip, pager)``."""

    dest: ThreadId
    mcp_or_new_chief: int | ThreadId
    esp: int = 0
    eip: int = 0
    pager: ThreadId = NIL_ID


@attrs.frozen(kw_only=True)
class TaskNewReply:
    """Kernel to the caller of ``l4_task_new``: the task id, or nil if refused."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class NChief:
    """Any thread to the kernel: ``l4_nchief(dest)``, who is the next chief towards dest."""

    dest: ThreadId


@attrs.frozen(kw_only=True)
class NChiefReply:
    """Kernel to the caller of ``l4_nchief``: the relation and the chief it names."""

    relation: str
    """``"same"`` (same clan), ``"inner"`` (dest is in a clan below the caller) or ``"outer"``."""
    chief: ThreadId


@attrs.frozen(kw_only=True)
class ThreadSchedule:
    """Any thread to the kernel: ``l4_thread_schedule(dest, param, ...)``.

    ``prio`` -1 (L4_INVALID_SCHED_PARAM) only reads ``dest``'s parameters; a priority
    0..255 sets it as well."""

    dest: ThreadId
    prio: int = -1


@attrs.frozen(kw_only=True)
class ThreadScheduleReply:
    """Kernel to the caller of ``l4_thread_schedule``: dest's old priority, -1 if refused."""

    prio: int


KernelRequest: TypeAlias = TaskNew | NChief | ThreadSchedule
KernelReply: TypeAlias = TaskNewReply | NChiefReply | ThreadScheduleReply


@attrs.frozen(kw_only=True)
class TaskEntry:
    """One row of the kernel's task table."""

    number: int
    chief: int
    """Task number of the chief: the only task allowed to create or delete this one."""
    active: bool
    version: int = 0
    mcp: int = 0
    pager: ThreadId = NIL_ID
    eip: int = 0
    esp: int = 0
    prio: int = 0
    """Priority of the task's lthread 0 (``l4_thread_schedule``)."""

    @property
    def id(self) -> ThreadId:
        """The task id of the current (or last) incarnation."""
        return task_id(self.number, self.version)


@attrs.frozen(kw_only=True)
class KernelState:
    """The kernel's task table: one entry per task number, indexed by number."""

    tasks: tuple[TaskEntry, ...]

    @property
    def task_count(self) -> int:
        """How many task numbers the table holds."""
        return len(self.tasks)

    def chief_of(self, number: int) -> int:
        """The chief's task number of task ``number``."""
        return self.tasks[number].chief

    def is_active(self, number: int) -> bool:
        """Whether task ``number`` exists (has an address space and threads)."""
        return self.tasks[number].active


def boot_state(task_count: int = TASK_COUNT) -> KernelState:
    """The task table right after boot (kernel_thread-std.cpp@e91a37df:14-58)."""
    if not FIRST_USER_TASK < task_count <= TASK_COUNT:
        raise ValueError(f"task_count must be in {FIRST_USER_TASK + 1}..{TASK_COUNT}")
    tasks = []
    for n in range(task_count):
        if n < FIRST_USER_TASK:
            active = n in (SIGMA0_TASK, RMGR_TASK)
            tasks.append(
                TaskEntry(
                    number=n,
                    chief=KERNEL_TASK,
                    active=active,
                    mcp=MAX_MCP if active else 0,
                    eip={SIGMA0_TASK: EIP_SIGMA0, RMGR_TASK: EIP_RMGR}.get(n, 0),
                    pager=task_id(SIGMA0_TASK) if n == RMGR_TASK else NIL_ID,
                )
            )
        else:
            tasks.append(TaskEntry(number=n, chief=RMGR_TASK, active=False))
    return KernelState(tasks=tuple(tasks))


def clan_of(state: KernelState, number: int) -> tuple[int, ...]:
    """Every task whose chain of chiefs leads to ``number`` (not ``number`` itself), sorted."""
    below = _children(state)
    found: list[int] = []
    frontier = [number]
    while frontier:
        for child in below.get(frontier.pop(), ()):
            found.append(child)
            frontier.append(child)
    return tuple(sorted(found))


def _children(state: KernelState) -> dict[int, list[int]]:
    """Chief number -> the task numbers it is chief of (the kernel task excluded)."""
    below: dict[int, list[int]] = {}
    for entry in state.tasks:
        if entry.number != KERNEL_TASK and entry.chief != entry.number:
            below.setdefault(entry.chief, []).append(entry.number)
    return below


def doomed(state: KernelState, number: int) -> frozenset[int]:
    """What deleting active task ``number`` kills: it and every active task under it.

    ``kill_task`` follows chiefs through active tasks only (thread.cpp@e91a37df:664-801);
    the walk is iterative."""
    below = _children(state)
    killed = {number}
    frontier = [number]
    while frontier:
        for child in below.get(frontier.pop(), ()):
            if state.tasks[child].active and child not in killed:
                killed.add(child)
                frontier.append(child)
    return frozenset(killed)


def _deleted(state: KernelState, caller: int, number: int) -> list[TaskEntry]:
    """The table after ``caller`` deletes active task ``number`` (space_index.cpp:131-160).

    Every killed task becomes inactive; every task whose chief was killed (killed ones
    included, ``number`` excluded: its chief is the caller already) gets the caller."""
    killed = doomed(state, number)
    tasks = list(state.tasks)
    for entry in state.tasks:
        if entry.number in killed:
            chief = entry.chief if entry.number == number else caller
            tasks[entry.number] = TaskEntry(
                number=entry.number, chief=chief, active=False, version=entry.version
            )
        elif entry.chief in killed and entry.number != KERNEL_TASK:
            tasks[entry.number] = attrs.evolve(entry, chief=caller)
    return tasks


def _well_typed(state: KernelState, req: TaskNew) -> bool:
    if req.dest.is_nil or req.dest.task >= state.task_count:
        return False
    if req.pager.is_nil:
        other = req.mcp_or_new_chief
        return isinstance(other, ThreadId)  # nil names task 0, which never exists
    return type(req.mcp_or_new_chief) is int and 0 <= req.mcp_or_new_chief <= MAX_MCP


def _task_new(
    state: KernelState, caller: int, req: TaskNew, edition: Edition
) -> tuple[KernelState, TaskNewReply]:
    # Not the chief of dest's number (or a malformed call): nothing changes, nil.
    if not _well_typed(state, req) or state.chief_of(req.dest.task) != caller:
        return state, TaskNewReply(task=NIL_ID)
    n = req.dest.task
    if req.pager.is_nil:
        assert isinstance(req.mcp_or_new_chief, ThreadId)
        heir = req.mcp_or_new_chief.task
        gone = doomed(state, n) if state.is_active(n) else frozenset()
        exists = heir < state.task_count and state.is_active(heir) and heir not in gone
        if not exists and edition.has(Fix.TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF):
            return state, TaskNewReply(task=NIL_ID)
        tasks = _deleted(state, caller, n) if state.is_active(n) else list(state.tasks)
        if not exists:
            # l4env-2007: the deletion stands, the hand-over is refused.
            return KernelState(tasks=tuple(tasks)), TaskNewReply(task=NIL_ID)
        tasks[n] = attrs.evolve(tasks[n], chief=heir)
        return KernelState(tasks=tuple(tasks)), TaskNewReply(task=req.dest.task_id)
    # A pager: a new active task, the caller its chief, prio the caller's, mcp bounded.
    assert isinstance(req.mcp_or_new_chief, int)
    tasks = _deleted(state, caller, n) if state.is_active(n) else list(state.tasks)
    creator = state.tasks[caller]
    tasks[n] = TaskEntry(
        number=n,
        chief=caller,
        active=True,
        version=req.dest.version,
        mcp=min(creator.mcp, req.mcp_or_new_chief),
        pager=req.pager,
        eip=req.eip,
        esp=req.esp,
        prio=creator.prio,
    )
    return KernelState(tasks=tuple(tasks)), TaskNewReply(task=req.dest)


def _chain(state: KernelState, number: int) -> list[int]:
    """Task numbers from ``number`` up to the kernel task, following chiefs."""
    chain = [number]
    while chain[-1] != KERNEL_TASK and len(chain) <= state.task_count:
        chain.append(state.chief_of(chain[-1]))
    return chain


def _nchief(state: KernelState, caller: int, req: NChief) -> NChiefReply:
    dest = req.dest.task
    if dest >= state.task_count:
        return NChiefReply(relation="outer", chief=state.tasks[state.chief_of(caller)].id)
    if state.chief_of(dest) == state.chief_of(caller):
        return NChiefReply(relation="same", chief=req.dest)
    chain = _chain(state, dest)
    if caller in chain[1:]:
        # dest lies in a clan below the caller: name the caller's direct subordinate.
        below = chain[chain.index(caller) - 1]
        return NChiefReply(relation="inner", chief=state.tasks[below].id)
    return NChiefReply(relation="outer", chief=state.tasks[state.chief_of(caller)].id)


def _thread_schedule(
    state: KernelState, caller: int, req: ThreadSchedule
) -> tuple[KernelState, ThreadScheduleReply]:
    # Only a live lthread 0 can be read; setting needs a priority within the caller's mcp.
    n = req.dest.task
    if req.dest.lthread != 0 or n >= state.task_count or not state.tasks[n].active:
        return state, ThreadScheduleReply(prio=-1)
    if state.tasks[n].id != req.dest:
        return state, ThreadScheduleReply(prio=-1)
    old = state.tasks[n].prio
    if req.prio < 0:
        return state, ThreadScheduleReply(prio=old)
    if req.prio > MAX_MCP or req.prio > state.tasks[caller].mcp:
        return state, ThreadScheduleReply(prio=-1)
    tasks = list(state.tasks)
    tasks[n] = attrs.evolve(tasks[n], prio=req.prio)
    return KernelState(tasks=tuple(tasks)), ThreadScheduleReply(prio=old)


def step(
    state: KernelState,
    sender: ThreadId,
    request: KernelRequest,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[KernelState, KernelReply]:
    """One kernel system call by ``sender``: the new state and the reply."""
    if isinstance(request, TaskNew):
        return _task_new(state, sender.task, request, edition)
    if isinstance(request, NChief):
        return state, _nchief(state, sender.task, request)
    if isinstance(request, ThreadSchedule):
        return _thread_schedule(state, sender.task, request)
    raise TypeError(f"not a kernel request: {type(request).__name__}")
