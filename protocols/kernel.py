"""The kernel's task system calls and the reference spec of its task table.

REFERENCE.md section 2 (Fiasco ``l4_task_new`` as used by L4Env in 2006).  The spec is a
pure function ``step(state, sender, request) -> (state, reply)``; the kernel actor in
``actors.kernel`` is a separate, mutable implementation that tests compare with it.

Documented assumptions where the sources are silent:

* The chief check compares task numbers only; the version in ``dest`` names the
  incarnation the call creates (or the inactive task keeps) and is stored as given.
* Deleting an active task deletes, recursively, every task it is chief of (its clan);
  every task of the deleted clan becomes inactive **with the caller of
  ``l4_task_new`` as its chief**, so no task number is stranded with a dead chief.
* With a nil pager, ``mcp_or_new_chief`` must be a non-nil thread id of another task
  that is **active**; with a pager it must be an int mcp.  (Fiasco does not check the new
  chief; without the check two inactive tasks can be made each other's chief, a cycle no
  running thread can ever break, so both task numbers are lost.  The l4sim ownership
  machine found that sequence; the kernel here refuses it.)  A mismatch, a nil ``dest``
  or a task number outside the table is refused like a non-chief: nil reply, nothing
  changes.
* Tasks 0..4 exist at boot with task 0 (the kernel) as chief; sigma0 (2) and RMGR (4)
  are active, 0, 1 and 3 are inactive placeholders no user thread can touch.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import attrs

from protocols.editions import DEFAULT_EDITION, Edition
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
    """The task table right after boot (REFERENCE.md section 2)."""
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
    found: list[int] = []
    frontier = [number]
    while frontier:
        chief = frontier.pop()
        for entry in state.tasks:
            if entry.chief == chief and entry.number != chief and entry.number != KERNEL_TASK:
                found.append(entry.number)
                frontier.append(entry.number)
    return tuple(sorted(found))


def _valid(state: KernelState, caller: int, req: TaskNew) -> bool:
    if req.dest.is_nil or req.dest.task >= state.task_count or req.dest.lthread != 0:
        return False
    if req.pager.is_nil:
        other = req.mcp_or_new_chief
        return (
            isinstance(other, ThreadId)
            and not other.is_nil
            and other.task < state.task_count
            and other.task != req.dest.task
            and state.tasks[other.task].active
        )
    return type(req.mcp_or_new_chief) is int and 0 <= req.mcp_or_new_chief <= MAX_MCP


def _task_new(state: KernelState, caller: int, req: TaskNew) -> tuple[KernelState, TaskNewReply]:
    # A refused call changes nothing and answers nil.
    if not _valid(state, caller, req) or state.chief_of(req.dest.task) != caller:
        return state, TaskNewReply(task=NIL_ID)
    n = req.dest.task
    tasks = list(state.tasks)
    # An active dest is deleted first, with its whole clan; the caller inherits the clan.
    if tasks[n].active:
        for member in clan_of(state, n):
            tasks[member] = TaskEntry(
                number=member, chief=caller, active=False, version=tasks[member].version
            )
    if req.pager.is_nil:
        # Nil pager: the task is (or stays) inactive and changes hands.
        assert isinstance(req.mcp_or_new_chief, ThreadId)
        tasks[n] = TaskEntry(
            number=n, chief=req.mcp_or_new_chief.task, active=False, version=req.dest.version
        )
    else:
        # A pager: a new active task, the caller its chief, mcp bounded by the caller's.
        assert isinstance(req.mcp_or_new_chief, int)
        tasks[n] = TaskEntry(
            number=n,
            chief=caller,
            active=True,
            version=req.dest.version,
            mcp=min(state.tasks[caller].mcp, req.mcp_or_new_chief),
            pager=req.pager,
            eip=req.eip,
            esp=req.esp,
        )
    return KernelState(tasks=tuple(tasks)), TaskNewReply(task=req.dest.task_id)


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
        return _task_new(state, sender.task, request)
    if isinstance(request, NChief):
        return state, _nchief(state, sender.task, request)
    if isinstance(request, ThreadSchedule):
        return _thread_schedule(state, sender.task, request)
    raise TypeError(f"not a kernel request: {type(request).__name__}")
