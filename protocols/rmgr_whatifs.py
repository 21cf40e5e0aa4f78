"""What-if messages of RMGR: ``AllocateChief``, ``Free2`` and ``FreeClient``.

None of these exists in the sources: the roottask interface of 2007
(``osfree-project/l4env l4/pkg/roottask/server/src/rmgr.c@e91a37df:100-353``) has no
such call.  They are what the ``merged`` strategy supposes (the seed: "this could also
be included to RMGR") and how l4sim reclaims a dead client; the same in every edition.
``protocols.rmgr`` re-exports the messages and routes them here.

* ``AllocateChief``: RMGR picks the lowest free task, bumps its version, makes the
  caller owner and chief (inactive) and records it as handed over (``handed``).
* ``Free2(task)``: the owner gives back a task after handing the chief right back to
  RMGR.  RMGR keeps the larger of its version and the caller's.
* ``FreeClient(owner)``: for a client RMGR started at boot (RMGR owns it): RMGR deletes
  the client's task (its clan passes to RMGR), frees its number, then frees every task
  the client held.  Allowed to trusted clients (the task server), and to the client
  itself only when there is no trusted client.
* A client's own task number cannot be handed to ``Free2`` (``EINVAL``).

``hardened`` (``Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK``): ``Free2`` and ``FreeClient`` (and
RMGR's own ``free_task``, ``protocols.rmgr``) also free
what each freed number held itself, depth first (a process that took a task from RMGR
and whose server gave its number back or exited leaves nothing held by the dead), and
then each orphan once: a number held by a user number that is free at RMGR.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from protocols.editions import Fix
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, ThreadId, task_id

if TYPE_CHECKING:
    from protocols import kernel
    from protocols.editions import Edition
    from protocols.rmgr import RmgrState, Step

__all__ = ["AllocateChief", "Free2", "FreeClient", "WhatIf", "free_held", "step"]


@attrs.frozen(kw_only=True)
class AllocateChief:
    """What-if (``merged``), client to RMGR: give me any free task, new version, as chief."""


@attrs.frozen(kw_only=True)
class Free2:
    """What-if (``merged``), owner to RMGR: take ``task`` back; I gave its chief right back."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class FreeClient:
    """What-if, a client (or a trusted client) to RMGR: delete ``owner``, free all it held."""

    owner: int


WhatIf = AllocateChief | Free2 | FreeClient


def _free_one(
    ks: kernel.KernelState, rs: RmgrState, number: int, edition: Edition
) -> tuple[kernel.KernelState, RmgrState, bool]:
    """Re-new ``number`` inactive with RMGR as chief and mark it free, if RMGR is chief."""
    from protocols import rmgr

    ks2, got = rmgr.kernel_task_new(
        ks, task_id(number, rs.versions[number]), task_id(RMGR_TASK), edition=edition
    )
    if got.is_nil:
        return ks, rs, False
    owners = rmgr.put(rs.owners, number, rmgr.FREE)
    return ks2, attrs.evolve(rs, owners=owners, handed=rs.handed - {number}), True


def _allocate_chief(ks: kernel.KernelState, rs: RmgrState, caller: int, edition: Edition) -> Step:
    from protocols import rmgr

    if len(rs.held_by(caller)) >= rs.quota:
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.EQUOTA)
    for number in range(FIRST_USER_TASK, len(rs.owners)):
        if rs.owners[number] != rmgr.FREE:
            continue
        dest = task_id(number, rs.versions[number]).next_version()
        ks2, got = rmgr.kernel_task_new(ks, dest, task_id(caller), edition=edition)
        if got.is_nil:
            continue
        rs2 = attrs.evolve(
            rs,
            owners=rmgr.put(rs.owners, number, caller),
            versions=rmgr.put(rs.versions, number, dest.version),
            handed=rs.handed | {number},
        )
        return ks2, rs2, rmgr.RmgrReply(error=ErrorCode.OK, task=got)
    return ks, rs, rmgr.RmgrReply(error=ErrorCode.ENOMEM)


def _free2(
    ks: kernel.KernelState, rs: RmgrState, caller: int, task: ThreadId, edition: Edition
) -> Step:
    from protocols import rmgr

    number = task.task
    if task.lthread != 0 or not FIRST_USER_TASK <= number < len(rs.owners) or number == caller:
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.EINVAL)
    owner = rs.owners[number]
    if owner == rmgr.FREE:
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.ENOTASK)
    if owner != caller:
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.ENOTOWNER)
    version = max(rs.versions[number], task.version)
    rs2 = attrs.evolve(rs, versions=rmgr.put(rs.versions, number, version))
    ks2, rs2, ok = _free_one(ks, rs2, number, edition)
    if not ok:
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.ENOTCHIEF)
    if edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):
        ks2, rs2, _ = free_held(ks2, rs2, number, edition, deep=True)
    return ks2, rs2, rmgr.RmgrReply(error=ErrorCode.OK, task=task_id(number, version))


def free_held(
    ks: kernel.KernelState, rs: RmgrState, owner: int, edition: Edition, *, deep: bool
) -> tuple[kernel.KernelState, RmgrState, int]:
    """Free every number ``owner`` holds (``deep``: and, depth first, what each of those
    held, with an explicit stack); how many were freed."""
    freed = 0
    stack = [owner]
    tried: set[int] = set()
    while stack:
        for number in rs.held_by(stack.pop()):
            ks, rs, ok = _free_one(ks, rs, number, edition)
            freed += ok
            if ok and deep:
                stack.append(number)
            elif deep:
                rs = _disown(rs, number, edition)
        if deep and not stack:
            # Then each orphan once: held by a user number that is free at RMGR now
            # (one a live task was chief of when its holder died), or disowned.
            orphan = next((n for n in _orphans(rs, edition) if n not in tried), None)
            if orphan is not None:
                tried.add(orphan)
                ks, rs, ok = _free_one(ks, rs, orphan, edition)
                freed += ok
                if ok:
                    stack.append(orphan)
                else:
                    rs = _disown(rs, orphan, edition)
    return ks, rs, freed


def _disown(rs: RmgrState, number: int, edition: Edition) -> RmgrState:
    """``HANDED_ON_TASK_OWNED_BY_THE_DEAD``: a handed-out number RMGR could not take back
    (a live task holds its chief right) is held by RMGR itself, not by the dead."""
    from protocols import rmgr

    if not edition.has(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD) or number not in rs.handed:
        return rs
    return attrs.evolve(rs, owners=rmgr.put(rs.owners, number, RMGR_TASK))


def _orphans(rs: RmgrState, edition: Edition) -> list[int]:
    from protocols import rmgr

    disowned = edition.has(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD)
    return [
        n
        for n, o in enumerate(rs.owners)
        if (FIRST_USER_TASK <= o < len(rs.owners) and rs.owners[o] == rmgr.FREE)
        or (disowned and o == RMGR_TASK and n in rs.handed)
    ]


def _free_client(
    ks: kernel.KernelState, rs: RmgrState, caller: int, owner: int, edition: Edition
) -> Step:
    from protocols import rmgr

    if not FIRST_USER_TASK <= owner < len(rs.owners) or rs.owners[owner] != RMGR_TASK:
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.EINVAL)
    if caller not in rs.trusted and (caller != owner or rs.trusted):
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.ENOTOWNER)
    ks, rs, ok = _free_one(ks, rs, owner, edition)
    if not ok:
        return ks, rs, rmgr.RmgrReply(error=ErrorCode.ENOTCHIEF)
    deep = edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK)
    ks, rs, held = free_held(ks, rs, owner, edition, deep=deep)
    return ks, rs, rmgr.RmgrReply(error=ErrorCode.OK, count=1 + held)


def step(
    ks: kernel.KernelState, rs: RmgrState, caller: int, request: WhatIf, edition: Edition
) -> Step:
    """One what-if request by task ``caller``."""
    if isinstance(request, AllocateChief):
        return _allocate_chief(ks, rs, caller, edition)
    if isinstance(request, Free2):
        return _free2(ks, rs, caller, request.task, edition)
    return _free_client(ks, rs, caller, request.owner, edition)
