"""The reference spec of the whole chief-ownership system, composed from its parts.

The state is a ``SystemSnapshot`` (kernel task table, RMGR's books, the task server's
books, every live L4Linux server); one step is one IPC call (or system call) by one
thread, dispatched to the spec of whoever receives it: ``protocols.kernel``,
``protocols.rmgr``, ``protocols.task_server`` or ``protocols.l4linux``.  A destination
that is not alive answers ``ENOT_EXISTENT`` and a thread that speaks no server protocol
answers ``EUNKNOWN_MESSAGE``, as the IPC path does.  ``boot`` builds the state that
``actors.system.boot`` builds.
"""

from __future__ import annotations

import typing
from typing import cast

import attrs

from protocols import kernel, l4linux, linux, rmgr
from protocols import task_server as ts
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, NIL_ID, RMGR_TASK, ThreadId
from protocols.ipc import IpcError
from protocols.snapshot import SystemSnapshot

__all__ = ["alive", "boot", "shutdown_linux", "step"]


def _members(union: object) -> tuple[type, ...]:
    """The message classes of a protocol's request union (``X | Y | Z``)."""
    return tuple(typing.get_args(union))


# Routing is derived from each protocol's request union, so a request a protocol declares
# can never be answered EUNKNOWN_MESSAGE here while its own spec answers it.
_KERNEL_REQUESTS = _members(kernel.KernelRequest)
_RMGR_REQUESTS = _members(rmgr.RmgrRequest)
_TS_REQUESTS = _members(ts.TsRequest)
_LINUX_REQUESTS = _members(linux.LinuxRequest)


def boot(
    *,
    task_count: int,
    modules: tuple[int, ...] = (),
    linux_servers: int = 0,
    strategy: l4linux.Strategy = l4linux.Strategy.CLASSIC,
    cache_size: int = l4linux.DEFAULT_CACHE_SIZE,
    task_server: bool | None = None,
    managed: int = ts.DEFAULT_MANAGED,
    quota: int | None = None,
    edition: Edition = DEFAULT_EDITION,
) -> SystemSnapshot:
    """The state right after boot, in the order ``actors.system`` boots a system."""
    has_ts = (
        task_server
        if task_server is not None
        else (linux_servers > 0 and strategy.uses_task_server)
    )
    trusted = frozenset({FIRST_USER_TASK}) if has_ts else frozenset()
    ks = kernel.boot_state(task_count)
    rs = rmgr.boot_state(task_count, quota=quota, trusted=trusted)
    eips = (
        *((ts.EIP_TASK_SERVER,) if has_ts else ()),
        *(l4linux.EIP_L4LINUX,) * linux_servers,
        *modules,
    )
    ks, rs, started = rmgr.start_modules(ks, rs, eips)
    tsv = None
    if has_ts:
        ks, rs, tsv = ts.init(ks, rs, started[0].task, managed)
    servers = []
    first = 1 if has_ts else 0
    for server in started[first : first + linux_servers]:
        ks, rs, tsv, lx, reply = l4linux.boot(
            ks, rs, tsv, server.task, strategy, cache_size, edition=edition
        )
        assert reply.error is ErrorCode.OK, reply
        servers.append(lx)
    for i, lx in enumerate(servers):
        ks, rs, tsv, servers[i] = l4linux.load_cache(ks, rs, tsv, lx, edition=edition)
    return SystemSnapshot(
        kernel=ks, rmgr=rs, task_server=tsv, linux=tuple(servers), edition=edition
    )


def alive(world: SystemSnapshot, tid: ThreadId) -> bool:
    """Whether thread ``tid`` exists: its task is active under exactly this id."""
    if tid.lthread != 0 or tid.task >= world.kernel.task_count:
        return False
    entry = world.kernel.tasks[tid.task]
    return entry.active and entry.id == tid


def _server_alive(world: SystemSnapshot, number: int, eip: int = l4linux.EIP_L4LINUX) -> bool:
    entry = world.kernel.tasks[number]
    return entry.active and entry.eip == eip and entry.version == rmgr.BOOT_MODULE_VERSION


def _drop_dead(world: SystemSnapshot) -> SystemSnapshot:
    """Forget servers whose task no longer runs (an observer cannot ask them): L4Linux
    servers, and the task server (in l4env-2007 anyone's ``free_task_all(RMGR)`` deletes
    every boot module, the task server included)."""
    live = tuple(lx for lx in world.linux if _server_alive(world, lx.me))
    tsv = world.task_server
    if tsv is not None and not _server_alive(world, tsv.me, ts.EIP_TASK_SERVER):
        tsv = None
    if live == world.linux and tsv is world.task_server:
        return world
    return attrs.evolve(world, linux=live, task_server=tsv)


def step(
    world: SystemSnapshot, sender: ThreadId, dest: ThreadId, message: object
) -> tuple[SystemSnapshot, object]:
    """Thread ``sender`` calls ``dest`` (``NIL_ID``: the kernel) with ``message``."""
    assert alive(world, sender), f"{sender} is not a live thread"
    ks, rs, tsv = world.kernel, world.rmgr, world.task_server
    name = type(message).__name__
    if dest == NIL_ID:
        # A system call: the kernel answers everything it gets.
        if not isinstance(message, _KERNEL_REQUESTS):
            return world, kernel.TaskNewReply(task=NIL_ID)
        ks, reply = kernel.step(
            ks, sender, cast(kernel.KernelRequest, message), edition=world.edition
        )
        return _drop_dead(attrs.evolve(world, kernel=ks)), reply
    if not alive(world, dest):
        return world, IpcError(code=ErrorCode.ENOT_EXISTENT, dest=dest, request=name)
    unknown = IpcError(code=ErrorCode.EUNKNOWN_MESSAGE, dest=dest, request=name)
    if dest.task == RMGR_TASK:
        if not isinstance(message, _RMGR_REQUESTS):
            return world, unknown
        ks, rs, rreply = rmgr.step(
            ks, rs, sender, cast(rmgr.RmgrRequest, message), edition=world.edition
        )
        return _drop_dead(attrs.evolve(world, kernel=ks, rmgr=rs)), rreply
    if tsv is not None and dest.task == tsv.me:
        if not isinstance(message, _TS_REQUESTS):
            return world, unknown
        ks, rs, tsv, treply = ts.step(
            ks, rs, tsv, sender, cast(ts.TsRequest, message), edition=world.edition
        )
        return _drop_dead(attrs.evolve(world, kernel=ks, rmgr=rs, task_server=tsv)), treply
    for i, lx in enumerate(world.linux):
        if dest.task != lx.me:
            continue
        if not isinstance(message, _LINUX_REQUESTS):
            return world, unknown
        ks, rs, tsv, lx2, lreply = l4linux.step(
            ks, rs, tsv, lx, sender, cast(linux.LinuxRequest, message), edition=world.edition
        )
        servers = (*world.linux[:i], lx2, *world.linux[i + 1 :])
        new = attrs.evolve(world, kernel=ks, rmgr=rs, task_server=tsv, linux=servers)
        return _drop_dead(new), lreply
    return world, unknown


def shutdown_linux(world: SystemSnapshot, server: int) -> tuple[SystemSnapshot, object]:
    """L4Linux server ``server`` exits as a whole client."""
    (lx,) = (lx for lx in world.linux if lx.me == server)
    ks, rs, tsv, reply = l4linux.shutdown(
        world.kernel, world.rmgr, world.task_server, lx, edition=world.edition
    )
    return _drop_dead(attrs.evolve(world, kernel=ks, rmgr=rs, task_server=tsv)), reply
