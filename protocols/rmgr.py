"""The RMGR (roottask) task protocol and its reference spec.

RMGR, the boot task (task 4), as of 2007-12: ``osfree-project/l4env
l4/pkg/roottask/server/src/rmgr.c@e91a37df:100-353`` with its books in ``task.c`` and
``quota.c`` (the same logic at 0e5dd12a).  Each rule below is written as its effect on
the kernel's task table and RMGR's books; ``actors.rmgr`` carries out the calls.

The books (task.c@e91a37df:17-61, types.h@e91a37df:6-13): one *byte* per task number,
``O_FREE`` (``FREE`` here), ``O_RESERVED`` (numbers 0..4, ``RESERVED`` here) or the
holder's task number truncated to 8 bits (``owner_t``).  Numbers above 4 are free at
boot (init.c@e91a37df:521); boot modules are held by RMGR.  Reserving (``task_alloc``)
succeeds at once if the caller's byte already holds the number, else the number must
be free and the caller's task quota must allow one more; releasing (``task_free``)
succeeds if the number is free or the caller's.  Task quotas (quota.c@e91a37df:230-269)
are indexed by the holder byte and *cumulative*: ``quota_free_task`` decrements a copy
(``__quota_free_u16`` takes the quota by value, quota.c@e91a37df:72-76), so a released
number is never given back to the quota.  The configured quota (``quota``, by default
unbounded, 0xFFFF like the sources' -1 in 16 bits) applies to every holder until
``task_new`` resets a new task's quotas to 0 (quota.c@e91a37df:184-194).

Reply codes: every call answers 0 or 1 (``set_task_id`` -1); we name the reason: out
of range, nil pager or badly typed ``EINVAL``; held by another ``EUSED``; quota spent
``EQUOTA``; ``l4_task_new`` refused ``ENOTCHIEF``; not the holder ``ENOTOWNER``
(``free_task``, ``set_task_id``); ``set_prio`` of no thread ``ENOTASK``.  Choices where
the sources are silent or typed differently:

* RMGR keeps no versions: ``versions`` (the last task created per number) is read by the
  what-ifs only (``protocols.rmgr_whatifs``).
* The IDL replies carry no task id.  ``RmgrReply.task`` of ``task_new`` is the kernel's
  answer; of ``get_task`` the number with the version of ``versions`` (the kernel itself
  is passed the caller's id with the number replaced, rmgr.c@e91a37df:123-126).
* ``set_task_id`` treats every name as configured, with the configured quota.
* ``log_mcp`` is 255, and 0 for a task ``task_new`` made until ``set_task_id``.

What-ifs with no source (``AllocateChief``, ``Free2``, ``FreeClient``): ``rmgr_whatifs``.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import attrs

from protocols import kernel, rmgr_whatifs
from protocols.editions import DEFAULT_EDITION, Edition, Fix
from protocols.errors import ErrorCode
from protocols.ids import (
    FIRST_USER_TASK,
    KERNEL_TASK,
    NIL_ID,
    RMGR_TASK,
    SIGMA0_TASK,
    ThreadId,
    task_id,
)
from protocols.rmgr_whatifs import AllocateChief, Free2, FreeClient

__all__ = [
    "BOOT_MODULE_VERSION",
    "FREE",
    "RESERVED",
    "UNLIMITED",
    "AllocateChief",
    "Free2",
    "FreeClient",
    "FreeTask",
    "FreeTaskAll",
    "GetTask",
    "RmgrConfig",
    "RmgrReply",
    "RmgrRequest",
    "RmgrState",
    "RmgrTaskNew",
    "SetPrio",
    "SetTaskId",
    "StartModules",
    "TaskCount",
    "boot_state",
    "code_of",
    "holder",
    "kernel_task_new",
    "put",
    "start_modules",
    "step",
]

FREE: Final = -1
"""Owner value of a task number that RMGR can hand out (``O_FREE``)."""
RESERVED: Final = KERNEL_TASK
"""Owner value of the numbers 0..4 (``O_RESERVED``)."""
UNLIMITED: Final = 0xFFFF
"""The default task quota: the sources' -1 in a 16-bit field."""
OWNER_BITS: Final = 8  # owner_t is a byte


@attrs.frozen(kw_only=True)
class GetTask:
    """Client to RMGR: reserve task ``number`` and make me its chief (inactive)."""

    number: int


@attrs.frozen(kw_only=True)
class FreeTask:
    """Holder to RMGR: release task ``number`` in RMGR's books."""

    number: int


@attrs.frozen(kw_only=True)
class FreeTaskAll:
    """Anyone to RMGR: delete and release every task held by task ``owner``."""

    owner: int


@attrs.frozen(kw_only=True)
class RmgrTaskNew:
    """Client to RMGR: create ``dest`` (a non-nil pager) for me; RMGR is its chief."""

    dest: ThreadId
    mcp_or_chief: int | ThreadId = 0
    esp: int = 0
    eip: int = 0
    pager: ThreadId = NIL_ID


@attrs.frozen(kw_only=True)
class SetTaskId:
    """Holder to RMGR: give task ``task`` the quota configured for ``name``."""

    name: str
    task: ThreadId


@attrs.frozen(kw_only=True)
class SetPrio:
    """Anyone to RMGR: set the priority of thread ``task`` to ``prio``."""

    task: ThreadId
    prio: int


@attrs.frozen(kw_only=True)
class RmgrReply:
    """RMGR to its client: an error code, a task id, a count (``FreeTaskAll``, ``TaskCount``)."""

    error: ErrorCode
    task: ThreadId = NIL_ID
    count: int = 0


@attrs.frozen(kw_only=True)
class TaskCount:
    """Task server to RMGR (the seed's cheaper boot): how many task numbers? Not in rmgr.c."""


RmgrRequest: TypeAlias = (  # the what-ifs have no source (protocols.rmgr_whatifs)
    GetTask
    | FreeTask
    | FreeTaskAll
    | RmgrTaskNew
    | SetTaskId
    | SetPrio
    | AllocateChief
    | Free2
    | FreeClient
    | TaskCount
)


@attrs.frozen(kw_only=True)
class RmgrState:
    """RMGR's books: holder per task number, quotas, trusted clients."""

    owners: tuple[int, ...]
    """Per number: ``FREE``, ``RESERVED`` or the holder (its task number, 8 bits)."""
    versions: tuple[int, ...]
    """Version of the last task RMGR created per number (what-ifs only)."""
    quota: int
    """How many task numbers one holder may ever reserve (cumulative)."""
    trusted: frozenset[int] = frozenset()
    """Clients named at boot that may free for others (``hardened`` free_task_all)."""
    handed: frozenset[int] = frozenset()
    """Task numbers handed out with ``AllocateChief`` (the owner should be the chief)."""
    used: tuple[int, ...] = (0,) * (1 << OWNER_BITS)
    """Reservations ever made per holder byte (``quota[t].task.current``)."""
    reset: frozenset[int] = frozenset()
    """Holder bytes whose quotas ``task_new`` reset to 0 (``quota_reset``)."""

    def held_by(self, owner: int) -> tuple[int, ...]:
        """Task numbers owned by ``owner``, sorted."""
        return tuple(n for n, o in enumerate(self.owners) if o == owner)


def boot_state(
    task_count: int, quota: int | None = None, trusted: frozenset[int] = frozenset()
) -> RmgrState:
    """RMGR's books at boot: 0..4 reserved, the rest free (init.c@e91a37df:521)."""
    owners = tuple(RESERVED if n < FIRST_USER_TASK else FREE for n in range(task_count))
    return RmgrState(
        owners=owners,
        versions=(0,) * task_count,
        quota=UNLIMITED if quota is None else quota,
        trusted=trusted,
    )


def put(t: tuple[int, ...], i: int, v: int) -> tuple[int, ...]:
    """``t`` with item ``i`` replaced by ``v``."""
    return (*t[:i], v, *t[i + 1 :])


def holder(task: int) -> int:
    """The owner value RMGR stores for caller ``task``: its number in one byte."""
    byte = _byte(task)
    return FREE if byte == 0 else RESERVED if byte == 1 else byte


def _byte(task: int) -> int:
    return task & ((1 << OWNER_BITS) - 1)


def code_of(owner: int) -> int:
    """The byte the sources store for owner value ``owner`` (O_FREE 0, O_RESERVED 1)."""
    return 0 if owner == FREE else 1 if owner == RESERVED else owner


def kernel_task_new(
    ks: kernel.KernelState,
    dest: ThreadId,
    chief_or_mcp: int | ThreadId,
    req: RmgrTaskNew | None = None,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[kernel.KernelState, ThreadId]:
    """RMGR's own ``l4_task_new``: the new table and the kernel's answer."""
    call = kernel.TaskNew(
        dest=dest,
        mcp_or_new_chief=chief_or_mcp,
        esp=req.esp if req else 0,
        eip=req.eip if req else 0,
        pager=req.pager if req else NIL_ID,
    )
    ks, reply = kernel.step(ks, task_id(RMGR_TASK), call, edition=edition)
    assert isinstance(reply, kernel.TaskNewReply)
    return ks, reply.task


Step: TypeAlias = tuple[kernel.KernelState, RmgrState, RmgrReply]


def _reserve(rs: RmgrState, number: int, caller: int) -> RmgrState | ErrorCode:
    """``task_alloc(number, caller, 1)`` (task.c@e91a37df:36-47): the books, or why not."""
    me = _byte(caller)
    held = code_of(rs.owners[number])
    if held == me:
        return rs
    if held != 0:
        return ErrorCode.EUSED
    if rs.used[me] >= (0 if me in rs.reset else rs.quota):
        return ErrorCode.EQUOTA
    return attrs.evolve(
        rs, owners=put(rs.owners, number, holder(caller)), used=put(rs.used, me, rs.used[me] + 1)
    )


def _release(rs: RmgrState, number: int, owner: int) -> RmgrState | None:
    """``task_free(number, owner)`` (task.c@e91a37df:49-61); quota is not given back."""
    held = code_of(rs.owners[number])
    if held not in (_byte(owner), 0):
        return None
    return attrs.evolve(rs, owners=put(rs.owners, number, FREE))


def _log_mcp(rs: RmgrState, caller: int) -> int:
    return 0 if _byte(caller) in rs.reset else kernel.MAX_MCP


def _in_table(rs: RmgrState, number: int) -> bool:
    return 0 <= number < len(rs.owners)  # the sources index without a lower bound


def _get_task(
    ks: kernel.KernelState, rs: RmgrState, sender: ThreadId, number: int, e: Edition
) -> Step:
    """Effect: the caller holds ``number`` and is chief of it, inactive (rmgr.c:105-135).

    Needs RMGR to be the number's chief (a running task is deleted).  If the kernel
    refuses, the number is released for the caller even if the caller held it before
    (l4env-2007); ``hardened`` (``RMGR_REFUSAL_RELEASES_HELD_NUMBER``) keeps a
    reservation the call did not make."""
    if not _in_table(rs, number):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    reserved = _reserve(rs, number, sender.task)
    if isinstance(reserved, ErrorCode):
        return ks, rs, RmgrReply(error=reserved)
    dest = ThreadId(number, sender.lthread, sender.version)
    ks2, got = kernel_task_new(ks, dest, sender, edition=e)
    if not got.is_nil:
        return (
            ks2,
            reserved,
            RmgrReply(error=ErrorCode.OK, task=task_id(number, rs.versions[number])),
        )
    if reserved is rs and e.has(Fix.RMGR_REFUSAL_RELEASES_HELD_NUMBER):
        return ks2, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
    released = _release(reserved, number, sender.task)
    return ks2, released or reserved, RmgrReply(error=ErrorCode.ENOTCHIEF)


def _free_task(
    ks: kernel.KernelState, rs: RmgrState, sender: ThreadId, number: int, e: Edition
) -> Step:
    """Effect: ``number`` is free in the books; the kernel is untouched (rmgr.c:289-306).

    The chief stays chief, a running task keeps running.  ``hardened``: re-newed to RMGR
    first, else ``ENOTCHIEF`` (``FREE_TASK_LEAVES_CHIEF``); what it held is freed too."""
    if not _in_table(rs, number):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    released = _release(rs, number, sender.task)
    if released is None:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    if e.has(Fix.FREE_TASK_LEAVES_CHIEF) and rs.owners[number] != FREE:
        dest = ThreadId(number, sender.lthread, sender.version)
        ks2, got = kernel_task_new(ks, dest, task_id(RMGR_TASK), edition=e)
        if got.is_nil:
            return ks, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
        ks = ks2
    if e.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):  # what the number held comes back too
        ks, released, _ = rmgr_whatifs.free_held(ks, released, number, e, deep=True)
    return ks, released, RmgrReply(error=ErrorCode.OK)


def _free_task_all(
    ks: kernel.KernelState, rs: RmgrState, sender: ThreadId, owner: int, e: Edition
) -> Step:
    """Effect: every number whose byte equals ``owner`` is inactive, RMGR chief, free.

    rmgr.c@e91a37df:255-287: anyone may call it (``hardened``, ``FREE_TASK_ALL_BY_ANYONE``:
    the owner and trusted clients).  The byte is compared with the whole number (owner
    0 matches every free number).  At the first refusal it stops with ``ENOTCHIEF``."""
    if e.has(Fix.FREE_TASK_ALL_BY_ANYONE) and sender.task not in (owner, *rs.trusted):
        return ks, rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    freed = 0
    for number in range(len(rs.owners)):
        if code_of(rs.owners[number]) != owner:
            continue
        dest = ThreadId(number, sender.lthread, sender.version)
        ks, got = kernel_task_new(ks, dest, task_id(RMGR_TASK), edition=e)
        if got.is_nil:
            return ks, rs, RmgrReply(error=ErrorCode.ENOTCHIEF, count=freed)
        rs = _release(rs, number, owner) or rs
        freed += 1
    return ks, rs, RmgrReply(error=ErrorCode.OK, count=freed)


def _task_new(
    ks: kernel.KernelState, rs: RmgrState, sender: ThreadId, req: RmgrTaskNew, e: Edition
) -> Step:
    """Effect: ``dest`` runs, RMGR its chief, the caller its holder (rmgr.c:196-253).

    Refused with a nil pager (RMGR's task_new cannot delete) or when the number cannot
    be reserved; mcp is capped by the caller's ``log_mcp``; RMGR must be the number's
    chief (a running task is deleted first).  On refusal the number is released as in
    ``get_task``.  The new task's quotas are reset to 0."""
    number = req.dest.task
    if req.dest.is_nil or not _in_table(rs, number) or req.pager.is_nil:
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    if type(req.mcp_or_chief) is not int or not 0 <= req.mcp_or_chief <= kernel.MAX_MCP:
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    reserved = _reserve(rs, number, sender.task)
    if isinstance(reserved, ErrorCode):
        return ks, rs, RmgrReply(error=reserved)
    mcp = min(req.mcp_or_chief, _log_mcp(rs, sender.task))
    ks2, got = kernel_task_new(ks, req.dest, mcp, req, edition=e)
    if got.is_nil:
        if reserved is rs and e.has(Fix.RMGR_REFUSAL_RELEASES_HELD_NUMBER):
            return ks2, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
        released = _release(reserved, number, sender.task)
        return ks2, released or reserved, RmgrReply(error=ErrorCode.ENOTCHIEF)
    rs2 = attrs.evolve(
        reserved,
        versions=put(rs.versions, number, req.dest.version),
        reset=reserved.reset | {_byte(number)},
    )
    return ks2, rs2, RmgrReply(error=ErrorCode.OK, task=got)


def _set_task_id(rs: RmgrState, sender: ThreadId, req: SetTaskId) -> tuple[RmgrState, RmgrReply]:
    """Effect: ``task`` gets the configured quota afresh (rmgr.c:333-353).

    Allowed if the holder byte equals the caller's whole number; the copy goes to slot
    ``task.task``, which the quota checks read only below 256."""
    number = req.task.task
    if not _in_table(rs, number):
        return rs, RmgrReply(error=ErrorCode.EINVAL)
    if code_of(rs.owners[number]) != sender.task:
        return rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    if number < (1 << OWNER_BITS):
        rs = attrs.evolve(rs, reset=rs.reset - {number}, used=put(rs.used, number, 0))
    return rs, RmgrReply(error=ErrorCode.OK)


def _set_prio(
    ks: kernel.KernelState, rs: RmgrState, sender: ThreadId, req: SetPrio, e: Edition
) -> Step:
    """Effect: thread ``task`` has priority ``prio`` (rmgr.c:137-163).

    No ownership check: anyone may set any thread's priority up to its own ``log_mcp``."""
    ks2, old = kernel.step(ks, task_id(RMGR_TASK), kernel.ThreadSchedule(dest=req.task), edition=e)
    assert isinstance(old, kernel.ThreadScheduleReply)
    if old.prio < 0:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTASK)
    if _log_mcp(rs, sender.task) < req.prio:
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    ks2, _ = kernel.step(
        ks2, task_id(RMGR_TASK), kernel.ThreadSchedule(dest=req.task, prio=req.prio), edition=e
    )
    return ks2, rs, RmgrReply(error=ErrorCode.OK)


def step(
    ks: kernel.KernelState,
    rs: RmgrState,
    sender: ThreadId,
    request: RmgrRequest,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> Step:
    """One RMGR request by ``sender``: new kernel and RMGR states and RMGR's reply."""
    if isinstance(request, GetTask):
        return _get_task(ks, rs, sender, request.number, edition)
    if isinstance(request, FreeTask):
        return _free_task(ks, rs, sender, request.number, edition)
    if isinstance(request, FreeTaskAll):
        return _free_task_all(ks, rs, sender, request.owner, edition)
    if isinstance(request, RmgrTaskNew):
        return _task_new(ks, rs, sender, request, edition)
    if isinstance(request, SetTaskId):
        return (ks, *_set_task_id(rs, sender, request))
    if isinstance(request, SetPrio):
        return _set_prio(ks, rs, sender, request, edition)
    if isinstance(request, AllocateChief | Free2 | FreeClient):
        return rmgr_whatifs.step(ks, rs, sender.task, request, edition)
    if isinstance(request, TaskCount):
        return ks, rs, RmgrReply(error=ErrorCode.OK, count=len(rs.owners))
    raise TypeError(f"not an RMGR request: {type(request).__name__}")


BOOT_MODULE_VERSION: Final = 1
"""Version of the ids of the tasks RMGR starts at boot (its boot modules)."""


def start_modules(
    ks: kernel.KernelState,
    rs: RmgrState,
    eips: tuple[int, ...],
    *,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[kernel.KernelState, RmgrState, tuple[ThreadId, ...]]:
    """RMGR starts its boot modules as tasks 5, 6, ...: active, RMGR chief and holder.

    init.c@e91a37df:1466-1540 reserves each for RMGR (``task_alloc``, counted against
    RMGR's own quota) and creates it."""
    ids = []
    for i, eip in enumerate(eips):
        number = FIRST_USER_TASK + i
        call = kernel.TaskNew(
            dest=task_id(number, BOOT_MODULE_VERSION),
            mcp_or_new_chief=kernel.MAX_MCP,
            eip=eip,
            pager=task_id(SIGMA0_TASK),
        )
        ks, reply = kernel.step(ks, task_id(RMGR_TASK), call, edition=edition)
        assert isinstance(reply, kernel.TaskNewReply) and not reply.task.is_nil, reply
        rs = attrs.evolve(
            rs,
            owners=put(rs.owners, number, RMGR_TASK),
            versions=put(rs.versions, number, BOOT_MODULE_VERSION),
            used=put(rs.used, RMGR_TASK, rs.used[RMGR_TASK] + 1),
        )
        ids.append(reply.task)
    return ks, rs, tuple(ids)


@attrs.frozen(kw_only=True)
class RmgrConfig:
    """Harness to RMGR at boot: table size, per-holder quota and trusted clients."""

    task_count: int
    quota: int | None = None
    trusted: frozenset[int] = frozenset()


@attrs.frozen(kw_only=True)
class StartModules:
    """Harness to RMGR at boot: start these boot modules (by eip) as tasks 5, 6, ..."""

    eips: tuple[int, ...]
