"""The RMGR (resource manager) task protocol and its reference spec.

REFERENCE.md section 3 (``roottask`` ``rmgr.idl`` / ``task.c`` in L4Env).  RMGR keeps an
owner per task number (free or reserved by an owner task) and a quota per client.  Its
spec is a pure step over the pair (kernel state, RMGR state), because every RMGR
operation ends in an ``l4_task_new`` that RMGR itself issues.

Documented assumptions where the sources are silent:

* ``get_task`` may be repeated by the current owner (``task_alloc(..., allow_realloc)``
  in ``task.c``); it re-transfers the chief right, deleting the task if it was active.
* ``free_task`` re-news the task inactive with RMGR as chief; this works only if RMGR is
  the chief again, so a client holding chief rights must hand them back (with
  ``l4_task_new(id, RMGR, 0, 0, nil)``) before freeing.  Otherwise ``ENOTCHIEF`` and no
  change.
* ``task_new`` on a client's behalf accepts a free task (it becomes the caller's) or one
  the caller owns; RMGR stays chief; a nil pager deletes the task and keeps it inactive
  with RMGR as chief (``mcp_or_chief`` is then ignored).
* ``free_task_all(owner)`` is allowed to the owner itself and to clients named trusted
  at boot (the task server, which reclaims a dead client's tasks).
* RMGR names a task with the version it last used for that number; versions of new
  incarnations are chosen by whoever creates them.

* A client's own task number is not something it can get, free or (re)create through
  RMGR: ``get_task``, ``free_task``, ``task_new`` and ``Free2`` on it are ``EINVAL`` and
  ``free_task_all`` skips it.  (The ownership suite found that otherwise a client could
  delete itself through RMGR while still holding tasks that nobody would reclaim;
  ``FreeClient`` is the way a client leaves.)

Additions for the ``merged`` what-if (the seed: "this could also be included to RMGR")
and for reclaiming a dead client; additive, the requests above are unchanged:

* ``AllocateChief``: RMGR picks the lowest free task, bumps its version, makes the caller
  owner and chief (inactive) and records it as handed over (``handed``).
* ``Free2(task)``: the owner gives back a task; as for ``free_task`` the owner must first
  hand the chief right back to RMGR.  RMGR keeps the larger of its version and the
  caller's (a client that restarted the task itself bumped it).
* ``FreeClient(owner)``: for a client RMGR started at boot (RMGR owns it): RMGR deletes
  the client's task (so its clan passes to RMGR), frees its number, then frees every task
  the client held.  Allowed to trusted clients (the task server), and to the client itself
  only when there is no trusted client: otherwise a client leaving through RMGR would
  strand what the task server handed it (a counterexample of the ownership suite).
"""

from __future__ import annotations

from typing import Final, TypeAlias

import attrs

from protocols import kernel
from protocols.editions import DEFAULT_EDITION, Edition
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

__all__ = [
    "RmgrConfig",
    "StartModules",
    "FREE",
    "AllocateChief",
    "Free2",
    "FreeClient",
    "FreeTask",
    "FreeTaskAll",
    "GetTask",
    "RmgrReply",
    "RmgrRequest",
    "TaskCount",
    "RmgrState",
    "RmgrTaskNew",
    "BOOT_MODULE_VERSION",
    "boot_state",
    "start_modules",
    "step",
]

FREE: Final = -1
"""Owner value of a task number that RMGR can hand out."""


@attrs.frozen(kw_only=True)
class GetTask:
    """Client to RMGR: reserve task ``number`` and make me its chief (inactive)."""

    number: int


@attrs.frozen(kw_only=True)
class FreeTask:
    """Owner to RMGR: take task ``number`` back (RMGR must be its chief again)."""

    number: int


@attrs.frozen(kw_only=True)
class FreeTaskAll:
    """Owner (or a trusted client) to RMGR: free every task that ``owner`` holds."""

    owner: int


@attrs.frozen(kw_only=True)
class RmgrTaskNew:
    """Client to RMGR: create (pager) or delete (nil pager) ``dest`` for me; RMGR stays chief."""

    dest: ThreadId
    mcp_or_chief: int | ThreadId = 0
    esp: int = 0
    eip: int = 0
    pager: ThreadId = NIL_ID


@attrs.frozen(kw_only=True)
class RmgrReply:
    """RMGR to its client: an error code and, on success, the task id concerned."""

    error: ErrorCode
    task: ThreadId = NIL_ID
    count: int = 0
    """For ``FreeTaskAll``: how many tasks were freed."""


@attrs.frozen(kw_only=True)
class AllocateChief:
    """Client to RMGR (``merged``): give me any free task, with a new version, as its chief."""


@attrs.frozen(kw_only=True)
class Free2:
    """Owner to RMGR (``merged``): take ``task`` back; I handed its chief right to RMGR."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class FreeClient:
    """A client (or a trusted client) to RMGR: delete client ``owner`` and free all it held."""

    owner: int


@attrs.frozen(kw_only=True)
class TaskCount:
    """Task server to RMGR (the seed's cheaper boot): how many task numbers exist?

    Answered with ``RmgrReply(count=...)``: the size of RMGR's table.  Changes nothing.
    The L4Env RMGR had no such call; the task server learned the count by getting and
    freeing every task (REFERENCE.md section 4), which ``scenarios/boot.py`` prices."""


RmgrRequest: TypeAlias = (
    GetTask | FreeTask | FreeTaskAll | RmgrTaskNew | AllocateChief | Free2 | FreeClient | TaskCount
)


@attrs.frozen(kw_only=True)
class RmgrState:
    """RMGR's books: owner per task number, quotas, trusted clients, last versions."""

    owners: tuple[int, ...]
    """Owner task number per task number, or ``FREE``.

    Tasks 0..4 are owned by the kernel task, RMGR's boot modules by RMGR itself."""
    versions: tuple[int, ...]
    quota: int
    """How many tasks one client may hold at once."""
    trusted: frozenset[int] = frozenset()
    handed: frozenset[int] = frozenset()
    """Task numbers handed out with ``AllocateChief`` (the owner should be the chief)."""

    def held_by(self, owner: int) -> tuple[int, ...]:
        """Task numbers owned by ``owner``, sorted."""
        return tuple(n for n, o in enumerate(self.owners) if o == owner)


def boot_state(
    task_count: int, quota: int | None = None, trusted: frozenset[int] = frozenset()
) -> RmgrState:
    """RMGR's books at boot: tasks above 4 free, the boot tasks reserved."""
    owners = tuple(KERNEL_TASK if n < FIRST_USER_TASK else FREE for n in range(task_count))
    return RmgrState(
        owners=owners,
        versions=(0,) * task_count,
        quota=task_count if quota is None else quota,
        trusted=trusted,
    )


def _set(t: tuple[int, ...], i: int, v: int) -> tuple[int, ...]:
    return (*t[:i], v, *t[i + 1 :])


def _rmgr_task_new(
    ks: kernel.KernelState, dest: ThreadId, chief_or_mcp: int | ThreadId, req: RmgrTaskNew | None
) -> tuple[kernel.KernelState, ThreadId]:
    """RMGR traps into the kernel with ``l4_task_new``."""
    call = kernel.TaskNew(
        dest=dest,
        mcp_or_new_chief=chief_or_mcp,
        esp=req.esp if req else 0,
        eip=req.eip if req else 0,
        pager=req.pager if req else NIL_ID,
    )
    ks, reply = kernel.step(ks, task_id(RMGR_TASK), call)
    assert isinstance(reply, kernel.TaskNewReply)
    return ks, reply.task


Step: TypeAlias = tuple[kernel.KernelState, RmgrState, RmgrReply]


def _in_range(rs: RmgrState, number: int) -> bool:
    return FIRST_USER_TASK <= number < len(rs.owners)


def _get_task(ks: kernel.KernelState, rs: RmgrState, caller: int, number: int) -> Step:
    # Only a task number RMGR manages, free or already the caller's, can be handed out.
    if not _in_range(rs, number):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    owner = rs.owners[number]
    if owner not in (FREE, caller):
        return ks, rs, RmgrReply(error=ErrorCode.EUSED)
    # A new reservation counts against the caller's quota.
    if owner == FREE and len(rs.held_by(caller)) >= rs.quota:
        return ks, rs, RmgrReply(error=ErrorCode.EQUOTA)
    # RMGR transfers the chief right: l4_task_new(num, caller, 0, 0, nil).
    dest = task_id(number, rs.versions[number])
    ks2, got = _rmgr_task_new(ks, dest, task_id(caller), None)
    if got.is_nil:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
    return (
        ks2,
        attrs.evolve(rs, owners=_set(rs.owners, number, caller)),
        RmgrReply(error=ErrorCode.OK, task=got),
    )


def _free_one(
    ks: kernel.KernelState, rs: RmgrState, number: int
) -> tuple[kernel.KernelState, RmgrState, bool]:
    """Re-new ``number`` inactive with RMGR as chief and mark it free, if RMGR is chief."""
    ks2, got = _rmgr_task_new(ks, task_id(number, rs.versions[number]), task_id(RMGR_TASK), None)
    if got.is_nil:
        return ks, rs, False
    return (
        ks2,
        attrs.evolve(rs, owners=_set(rs.owners, number, FREE), handed=rs.handed - {number}),
        True,
    )


def _free_task(ks: kernel.KernelState, rs: RmgrState, caller: int, number: int) -> Step:
    # Only the owner may free; freeing a free task is a harmless no-op (task_free()).
    if not _in_range(rs, number):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    owner = rs.owners[number]
    if owner == FREE:
        return ks, rs, RmgrReply(error=ErrorCode.OK, task=task_id(number, rs.versions[number]))
    if owner != caller:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    ks, rs, ok = _free_one(ks, rs, number)
    if not ok:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
    return ks, rs, RmgrReply(error=ErrorCode.OK, task=task_id(number, rs.versions[number]))


def _free_task_all(ks: kernel.KernelState, rs: RmgrState, caller: int, owner: int) -> Step:
    # The owner itself or a trusted client; tasks whose chief right RMGR lacks stay put.
    if owner in (FREE, KERNEL_TASK, RMGR_TASK) or not 0 <= owner < len(rs.owners):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    if caller != owner and caller not in rs.trusted:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    freed = 0
    for number in rs.held_by(owner):
        if number == owner:
            continue
        ks, rs, ok = _free_one(ks, rs, number)
        freed += ok
    return ks, rs, RmgrReply(error=ErrorCode.OK, count=freed)


def _task_new(ks: kernel.KernelState, rs: RmgrState, caller: int, req: RmgrTaskNew) -> Step:
    # The caller must own dest at RMGR, or dest must be free (it then becomes the caller's).
    number = req.dest.task
    if req.dest.is_nil or req.dest.lthread != 0 or not _in_range(rs, number):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    owner = rs.owners[number]
    if owner not in (FREE, caller):
        return ks, rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    if owner == FREE and len(rs.held_by(caller)) >= rs.quota:
        return ks, rs, RmgrReply(error=ErrorCode.EQUOTA)
    # RMGR issues l4_task_new and stays chief: a nil pager keeps RMGR as the new chief.
    chief_or_mcp = task_id(RMGR_TASK) if req.pager.is_nil else req.mcp_or_chief
    if not req.pager.is_nil and type(chief_or_mcp) is not int:
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    ks2, got = _rmgr_task_new(ks, req.dest, chief_or_mcp, req)
    if got.is_nil:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
    rs2 = attrs.evolve(
        rs,
        owners=_set(rs.owners, number, caller),
        versions=_set(rs.versions, number, req.dest.version),
    )
    return ks2, rs2, RmgrReply(error=ErrorCode.OK, task=got)


def _allocate_chief(ks: kernel.KernelState, rs: RmgrState, caller: int) -> Step:
    # The lowest free task, within the caller's quota, with its version bumped.
    if len(rs.held_by(caller)) >= rs.quota:
        return ks, rs, RmgrReply(error=ErrorCode.EQUOTA)
    for number in range(FIRST_USER_TASK, len(rs.owners)):
        if rs.owners[number] != FREE:
            continue
        dest = task_id(number, rs.versions[number]).next_version()
        ks2, got = _rmgr_task_new(ks, dest, task_id(caller), None)
        if got.is_nil:
            continue
        rs2 = attrs.evolve(
            rs,
            owners=_set(rs.owners, number, caller),
            versions=_set(rs.versions, number, dest.version),
            handed=rs.handed | {number},
        )
        return ks2, rs2, RmgrReply(error=ErrorCode.OK, task=got)
    return ks, rs, RmgrReply(error=ErrorCode.ENOMEM)


def _free2(ks: kernel.KernelState, rs: RmgrState, caller: int, task: ThreadId) -> Step:
    # The owner only, and only once it handed the chief right back to RMGR.
    number = task.task
    if task.lthread != 0 or not _in_range(rs, number):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    owner = rs.owners[number]
    if owner == FREE:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTASK)
    if owner != caller:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    version = max(rs.versions[number], task.version)
    rs2 = attrs.evolve(rs, versions=_set(rs.versions, number, version))
    ks2, rs2, ok = _free_one(ks, rs2, number)
    if not ok:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
    return ks2, rs2, RmgrReply(error=ErrorCode.OK, task=task_id(number, version))


def _free_client(ks: kernel.KernelState, rs: RmgrState, caller: int, owner: int) -> Step:
    # Only a client RMGR started (RMGR owns it); the client itself or a trusted one.
    if not _in_range(rs, owner) or rs.owners[owner] != RMGR_TASK:
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    # With a task server (trusted) the client must leave through it, so it can reclaim.
    if caller not in rs.trusted and (caller != owner or rs.trusted):
        return ks, rs, RmgrReply(error=ErrorCode.ENOTOWNER)
    # Delete the client first: its clan passes to RMGR, which can then free it all.
    ks, rs, ok = _free_one(ks, rs, owner)
    if not ok:
        return ks, rs, RmgrReply(error=ErrorCode.ENOTCHIEF)
    freed = 1
    for number in rs.held_by(owner):
        ks, rs, ok = _free_one(ks, rs, number)
        freed += ok
    return ks, rs, RmgrReply(error=ErrorCode.OK, count=freed)


def step(
    ks: kernel.KernelState,
    rs: RmgrState,
    sender: ThreadId,
    request: RmgrRequest,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> Step:
    """One RMGR request by ``sender``: new kernel and RMGR states and RMGR's reply."""
    caller = sender.task
    own = getattr(request, "number", None) if not isinstance(request, RmgrTaskNew) else None
    if isinstance(request, RmgrTaskNew | Free2):
        own = request.dest.task if isinstance(request, RmgrTaskNew) else request.task.task
    if own == caller and not isinstance(request, FreeTaskAll):
        return ks, rs, RmgrReply(error=ErrorCode.EINVAL)
    if isinstance(request, GetTask):
        return _get_task(ks, rs, caller, request.number)
    if isinstance(request, FreeTask):
        return _free_task(ks, rs, caller, request.number)
    if isinstance(request, FreeTaskAll):
        return _free_task_all(ks, rs, caller, request.owner)
    if isinstance(request, RmgrTaskNew):
        return _task_new(ks, rs, caller, request)
    if isinstance(request, AllocateChief):
        return _allocate_chief(ks, rs, caller)
    if isinstance(request, Free2):
        return _free2(ks, rs, caller, request.task)
    if isinstance(request, FreeClient):
        return _free_client(ks, rs, caller, request.owner)
    if isinstance(request, TaskCount):
        return ks, rs, RmgrReply(error=ErrorCode.OK, count=len(rs.owners))
    raise TypeError(f"not an RMGR request: {type(request).__name__}")


BOOT_MODULE_VERSION: Final = 1
"""Version of the ids of the tasks RMGR starts at boot (its boot modules)."""


def start_modules(
    ks: kernel.KernelState, rs: RmgrState, eips: tuple[int, ...]
) -> tuple[kernel.KernelState, RmgrState, tuple[ThreadId, ...]]:
    """RMGR starts its boot modules as tasks 5, 6, ...: active, RMGR chief and their owner."""
    ids = []
    for i, eip in enumerate(eips):
        number = FIRST_USER_TASK + i
        dest = task_id(number, BOOT_MODULE_VERSION)
        call = kernel.TaskNew(
            dest=dest,
            mcp_or_new_chief=kernel.MAX_MCP,
            eip=eip,
            pager=task_id(SIGMA0_TASK),
        )
        ks, reply = kernel.step(ks, task_id(RMGR_TASK), call)
        assert isinstance(reply, kernel.TaskNewReply) and not reply.task.is_nil, reply
        rs = attrs.evolve(
            rs,
            owners=_set(rs.owners, number, RMGR_TASK),
            versions=_set(rs.versions, number, BOOT_MODULE_VERSION),
        )
        ids.append(reply.task)
    return ks, rs, tuple(ids)


@attrs.frozen(kw_only=True)
class RmgrConfig:
    """Harness to RMGR at boot: table size, per-client quota and trusted clients."""

    task_count: int
    quota: int | None = None
    trusted: frozenset[int] = frozenset()


@attrs.frozen(kw_only=True)
class StartModules:
    """Harness to RMGR at boot: start these boot modules (by eip) as tasks 5, 6, ..."""

    eips: tuple[int, ...]
