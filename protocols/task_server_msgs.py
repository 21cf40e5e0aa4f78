"""The task server's messages and books (L4Env ``simple_ts``, interface ``generic_ts``).

The interface is ``osfree-project/l4env l4/pkg/generic_ts/idl/generic_ts.idl@e91a37df:18-117``;
the books are those of ``osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:35-68``:
per task number an owner, an id, a *used* bit and a *terminating* bit.  The rules over
them are in ``protocols.task_server``, which re-exports every name defined here.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

import attrs

from protocols import kernel, rmgr
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, ThreadId

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
]

EIP_TASK_SERVER: Final = 0x2000
"""Start address of the task server's code (selects its image in the actor system)."""
TASK_FIRST: Final = 10
"""The first task number simple_ts manages (``TASK_FIRST``, main.c@e91a37df:37,48)."""
TASK_CNT_MAX: Final = 901
"""simple_ts manages at most ``TASK_CNT_MAX - TASK_FIRST`` numbers (main.c:35,115-120)."""
DEFAULT_MANAGED: Final = 64
"""How many task numbers simple_ts manages by default (``TASK_CNT_DFL``, main.c:36,49)."""
NO_OWNER: Final = -1
"""Owner value of a task number no client owns (``L4_NIL_ID`` in main.c)."""
VERSION_LOW: Final = 1 << 10
"""simple_ts bumps only the 10-bit ``version_low`` of an id (main.c:208,224): it wraps here."""


class KillOption(enum.Flag):
    """Options of ``kill`` (``L4TS_KILL_*``, generic_ts/include/generic_ts.h@e91a37df:112-114)."""

    NONE = 0
    SYNC = 1
    FREE = 2
    NOEV = 4


class TaskState(enum.Enum):
    """How a task number stands in the task server's books.

    simple_ts itself keeps only a *used* bit (``FREE`` = clear); ``ALLOCATED`` and ``CHIEF``
    say which call last handed the number out (``allocate`` or ``allocate2``), which the
    model remembers so that the invariants can ask what the client was promised.
    ``RESERVED``: a number RMGR refused at init, marked used and terminating for good
    (main.c:171-179)."""

    FREE = "free"
    ALLOCATED = "allocated"
    CHIEF = "chief"
    RESERVED = "reserved"


@attrs.frozen(kw_only=True)
class Allocate:
    """Client to the task server: a task number for me, RMGR stays chief (``allocate``).

    ``taskno`` 0 means any free number (``ANY_TASKNO``)."""

    taskno: int = 0


@attrs.frozen(kw_only=True)
class AllocateChief:
    """Client to the task server: a task number and its chief right (``allocate2``)."""

    taskno: int = 0


@attrs.frozen(kw_only=True)
class Create:
    """Owner to the task server: start ``task`` through RMGR (``create``)."""

    task: ThreadId
    mcp: int = kernel.MAX_MCP
    eip: int = 0
    esp: int = 0
    pager: ThreadId = NIL_ID
    prio: int = 0
    """Priority asked for; simple_ts passes it to RMGR's ``set_prio`` whatever it is."""
    resname: str = ""
    """Resource name; if not empty, simple_ts asks RMGR's ``set_task_id`` with it
    (main.c@e91a37df:545-563)."""


@attrs.frozen(kw_only=True)
class Free:
    """Owner to the task server: give task number ``task.task`` back (``free``)."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class Free2:
    """Owner to the task server: give ``task`` back with its chief right (``free2``)."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class Kill:
    """To the task server: stop ``task`` (``kill``)."""

    task: ThreadId
    options: KillOption = KillOption.NONE


@attrs.frozen(kw_only=True)
class KillRecursive:
    """To the task server: stop ``task`` and, recursively, all it owns (``kill_recursive``)."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class Owner:
    """Owner to the task server: make ``owner`` the owner of ``task`` (``owner``).

    A transfer, not a query (main.c@e91a37df:654-664); the nil id leaves the task ownerless."""

    task: ThreadId
    owner: ThreadId = NIL_ID


@attrs.frozen(kw_only=True)
class Exit:
    """Client to the task server: I exit; stop me and everything I own (``exit``)."""


@attrs.frozen(kw_only=True)
class TsReply:
    """Task server to its client: an error code and, for the allocations, the task's id."""

    error: ErrorCode
    task: ThreadId = NIL_ID
    owner: int = NO_OWNER


TsRequest: TypeAlias = (
    Allocate | AllocateChief | Create | Free | Free2 | Kill | KillRecursive | Owner | Exit
)


@attrs.frozen(kw_only=True)
class TsRecord:
    """The task server's record of one managed task number (``__task_t``, main.c:52-59)."""

    number: int
    id: ThreadId
    """The id last handed out (version 0 after init, main.c:163-168)."""
    owner: int = NO_OWNER
    state: TaskState = TaskState.FREE
    terminating: bool = False
    """The ``task_term`` bit (main.c:47)."""

    @property
    def used(self) -> bool:
        """The ``task_used`` bit (main.c:46)."""
        return self.state is not TaskState.FREE


@attrs.frozen(kw_only=True)
class TsState:
    """The task server's books and its command-line switches (main.c:61-68,91-102)."""

    me: int
    records: tuple[TsRecord, ...]
    exit_events: int = 0
    """Exit events sent (kills with ``events`` on and without ``NOEV``)."""
    events: bool = False
    """``-e``: send an exit event per kill (off by default, main.c:94)."""
    anykill: bool = False
    """``-a``: any task may kill any task (main.c:92)."""
    master: int = NO_OWNER
    """``-m``: a task that may kill every task (main.c:96)."""

    def record(self, number: int) -> TsRecord | None:
        """The record of task ``number``, or None if not managed."""
        for r in self.records:
            if r.number == number:
                return r
        return None

    def owned_by(self, owner: int) -> tuple[int, ...]:
        """Used task numbers ``owner`` owns, sorted."""
        return tuple(r.number for r in self.records if r.used and r.owner == owner)


@attrs.frozen(kw_only=True)
class TsInit:
    """Boot loader (harness) to the task server: learn ``managed`` task numbers from RMGR."""

    managed: int = DEFAULT_MANAGED
    by_count: bool = False
    """Ask RMGR for the count (``TaskCount``) instead of getting every task (not simple_ts)."""


@attrs.frozen(kw_only=True)
class TsRecover:
    """Harness to a restarted task server: rebuild your books from these two tables.

    The kernel's chief table and RMGR's owners, read when the new task server starts
    (a real one would read them from the kernel and RMGR; the harness hands it the
    snapshot so the kernel still never waits on anyone)."""

    kernel: kernel.KernelState
    rmgr: rmgr.RmgrState
    managed: int = DEFAULT_MANAGED
