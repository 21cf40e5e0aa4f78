"""The L4Linux server's task management: strategies, the task cache, its observable state.

REFERENCE.md section 5.  An L4Linux server runs every Linux process in an L4 task of
its own, whose lthread 0 has the server as its pager.  How it gets, starts, stops and
gives back those tasks is the **strategy**, chosen at boot:

* ``classic`` (the seed's "before"): fork = task server ``allocate`` + ``create``
  (task server -> RMGR -> ``l4_task_new``); exit = task server ``kill`` + ``free``.
* ``chief``: fork = ``allocate_chief`` + its own ``l4_task_new(id, mcp, esp, eip,
  pager)``; exit = its own ``l4_task_new(id, itself, 0, 0, nil)`` (the task stays
  inactive, L4Linux still its chief), then the chief right goes to the task server with
  ``l4_task_new(id, task_server, 0, 0, nil)`` and the task back with ``free2``.
* ``chief+cache``: as ``chief``, but an exited task goes into a cache of inactive tasks
  L4Linux stays chief of (``cache_size``, default 5 like ``lx_task_cache``); fork takes
  the most recently cached task and restarts it **with its version bumped** (so the old
  id reaches nothing); a miss falls back to ``allocate_chief``; a full cache gives the
  task back as ``chief`` does.
* ``merged`` (the seed's what-if "this could also be included to RMGR"): no task server;
  fork = RMGR ``AllocateChief`` + own ``l4_task_new``; exit = own stop, chief right back
  to RMGR, RMGR ``Free2``.

Linux semantics kept by the model: pids count up from 1 per server; ``init`` (pid 1,
started at boot) cannot exit or be killed (``EINVAL``); children of an exiting process
pass to init; ``wait`` never blocks (``pid=0`` when children exist but none has exited,
``ENOTASK`` when there is no such child); ``kill`` of a zombie succeeds and does
nothing; a killed process exits with status ``KILLED_STATUS``.  A thread that is not a
running process of the server gets ``ENOTASK`` (``getpid`` answers pid 0).  Fork answers
the error of the task server (or RMGR) when no task can be had (``ENOMEM``), and
``ENOTCHIEF`` if the new task cannot be started (only possible if something else broke the
chief right; the task then stays recorded as the server's at the task server and is
reclaimed when the server exits).
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

import attrs

from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, RMGR_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.linux import (
    Exit,
    ExitReply,
    Fork,
    ForkReply,
    Getpid,
    GetpidReply,
    Kill,
    KillReply,
    LinuxReply,
    LinuxRequest,
    Read,
    ReadReply,
    Wait,
    WaitReply,
)

__all__ = [
    "LinuxBoot",
    "LinuxShutdown",
    "DEFAULT_CACHE_SIZE",
    "EIP_L4LINUX",
    "EIP_PROCESS",
    "INIT_PID",
    "KILLED_STATUS",
    "LinuxState",
    "ProcState",
    "Process",
    "Strategy",
    "boot",
    "shutdown",
    "step",
]

EIP_L4LINUX: Final = 0x3000
"""Start address of an L4Linux server's code (selects its image in the actor system)."""
EIP_PROCESS: Final = 0x4000
"""Start address of a Linux user process (selects its image in the actor system)."""

DEFAULT_CACHE_SIZE: Final = 5
"""Tasks the ``lx_task_cache`` example keeps."""
KILLED_STATUS: Final = -9
"""Exit status of a process killed with ``sys_kill`` (SIGKILL)."""
INIT_PID: Final = 1


class Strategy(enum.Enum):
    """How an L4Linux server gets and gives back the tasks of its processes."""

    CLASSIC = "classic"
    CHIEF = "chief"
    CHIEF_CACHE = "chief+cache"
    MERGED = "merged"

    @property
    def uses_task_server(self) -> bool:
        """Whether this strategy talks to a task server (all but ``merged``)."""
        return self is not Strategy.MERGED

    @property
    def caches(self) -> bool:
        """Whether this strategy keeps a task cache."""
        return self is Strategy.CHIEF_CACHE


class ProcState(enum.Enum):
    """A Linux process is running, or has exited and waits to be reaped."""

    RUNNING = "running"
    ZOMBIE = "zombie"


@attrs.frozen(kw_only=True)
class Process:
    """One Linux process of an L4Linux server."""

    pid: int
    task: ThreadId
    """The task id its lthread 0 runs under (the id it had when it ran, for a zombie)."""
    parent: int
    """The parent's pid (0 for init)."""
    state: ProcState = ProcState.RUNNING
    status: int = 0


@attrs.frozen(kw_only=True)
class LinuxState:
    """What an L4Linux server knows: its processes, its task cache, the ids it retired."""

    me: int
    """The server's task number."""
    strategy: Strategy
    cache_size: int
    processes: tuple[Process, ...] = ()
    """Sorted by pid."""
    cache: tuple[ThreadId, ...] = ()
    """Inactive tasks it is chief of, in the order they were cached (last out first)."""
    retired: frozenset[ThreadId] = frozenset()
    """Ids of processes that exited: no later process may run under one of them."""
    next_pid: int = INIT_PID

    def process(self, pid: int) -> Process | None:
        """The process with ``pid``, or None."""
        for p in self.processes:
            if p.pid == pid:
                return p
        return None

    def running_in(self, task: int) -> Process | None:
        """The running process whose task number is ``task``, or None."""
        for p in self.processes:
            if p.state is ProcState.RUNNING and p.task.task == task:
                return p
        return None


# -- the reference spec ---------------------------------------------------------------


class _World:
    """Scratch copies of the states one L4Linux step threads through its calls."""

    def __init__(
        self,
        ks: kernel.KernelState,
        rs: rmgr.RmgrState,
        tsv: ts.TsState | None,
        lx: LinuxState,
    ) -> None:
        self.ks, self.rs, self.tsv, self.lx = ks, rs, tsv, lx
        self.me = ks.tasks[lx.me].id
        self.ts_id = ks.tasks[tsv.me].id if tsv is not None else NIL_ID

    def ts(self, request: ts.TsRequest) -> ts.TsReply | IpcError:
        if self.tsv is None or not self.ks.is_active(self.tsv.me):
            return IpcError(
                code=ErrorCode.ENOT_EXISTENT, dest=self.ts_id, request=type(request).__name__
            )
        self.ks, self.rs, self.tsv, reply = ts.step(self.ks, self.rs, self.tsv, self.me, request)
        return reply

    def rmgr(self, request: rmgr.RmgrRequest) -> rmgr.RmgrReply:
        self.ks, self.rs, reply = rmgr.step(self.ks, self.rs, self.me, request)
        return reply

    def task_new(self, dest: ThreadId, other: int | ThreadId, pager: ThreadId = NIL_ID) -> bool:
        request = kernel.TaskNew(
            dest=dest,
            mcp_or_new_chief=other,
            eip=EIP_PROCESS if not pager.is_nil else 0,
            pager=pager,
        )
        self.ks, reply = kernel.step(self.ks, self.me, request)
        assert isinstance(reply, kernel.TaskNewReply)
        return not reply.task.is_nil

    def put(self, **changes: object) -> None:
        self.lx = attrs.evolve(self.lx, **changes)  # type: ignore[arg-type]


def _ok_task(reply: ts.TsReply | rmgr.RmgrReply | IpcError) -> ThreadId | ErrorCode:
    if isinstance(reply, IpcError):
        return reply.code
    if reply.error is not ErrorCode.OK:
        return reply.error
    return reply.task


def _acquire(w: _World) -> ThreadId | ErrorCode:
    # classic: allocate; a cache hit: the cached task with a new version; else allocate_chief.
    lx = w.lx
    if lx.strategy is Strategy.CLASSIC:
        return _ok_task(w.ts(ts.Allocate()))
    if lx.strategy.caches and lx.cache:
        w.put(cache=lx.cache[:-1])
        return lx.cache[-1].next_version()
    if lx.strategy is Strategy.MERGED:
        return _ok_task(w.rmgr(rmgr.AllocateChief()))
    return _ok_task(w.ts(ts.AllocateChief()))


def _start(w: _World, task: ThreadId) -> bool:
    # classic: the task server creates it through RMGR; else L4Linux's own l4_task_new.
    if w.lx.strategy is Strategy.CLASSIC:
        reply = w.ts(ts.Create(task=task, eip=EIP_PROCESS, pager=w.me))
        return not isinstance(reply, IpcError) and reply.error is ErrorCode.OK
    return w.task_new(task, kernel.MAX_MCP, pager=w.me)


def _stop(w: _World, task: ThreadId) -> None:
    # classic: kill + free; else stop (stay chief), then cache or give back.
    lx = w.lx
    if lx.strategy is Strategy.CLASSIC:
        w.ts(ts.Kill(task=task, options=ts.KillOption.SYNC))
        w.ts(ts.Free(task=task))
        return
    w.task_new(task, w.me)
    if lx.strategy.caches and len(lx.cache) < lx.cache_size:
        w.put(cache=(*lx.cache, task))
        return
    if lx.strategy is Strategy.MERGED:
        w.task_new(task, task_id(RMGR_TASK))
        w.rmgr(rmgr.Free2(task=task))
        return
    w.task_new(task, w.ts_id)
    w.ts(ts.Free2(task=task))


def _spawn(w: _World, parent: int) -> ForkReply:
    got = _acquire(w)
    if isinstance(got, ErrorCode):
        return ForkReply(error=got)
    if not _start(w, got):
        return ForkReply(error=ErrorCode.ENOTCHIEF)
    pid = w.lx.next_pid
    proc = Process(pid=pid, task=got, parent=parent)
    w.put(processes=(*w.lx.processes, proc), next_pid=pid + 1)
    return ForkReply(error=ErrorCode.OK, pid=pid, task=got)


def _replace(w: _World, proc: Process) -> None:
    w.put(processes=tuple(proc if p.pid == proc.pid else p for p in w.lx.processes))


def _end(w: _World, proc: Process, status: int) -> None:
    # Stop the task, retire its id, keep a zombie, pass the children to init.
    _stop(w, proc.task)
    w.put(retired=w.lx.retired | {proc.task})
    _replace(w, attrs.evolve(proc, state=ProcState.ZOMBIE, status=status))
    for child in w.lx.processes:
        if child.parent == proc.pid:
            _replace(w, attrs.evolve(child, parent=INIT_PID))


def _caller(lx: LinuxState, sender: ThreadId) -> Process | None:
    for p in lx.processes:
        if p.state is ProcState.RUNNING and p.task == sender.task_id:
            return p
    return None


def _syscall(w: _World, sender: ThreadId, request: LinuxRequest) -> LinuxReply:
    proc = _caller(w.lx, sender)
    if isinstance(request, Getpid):
        return GetpidReply(pid=proc.pid if proc else 0)
    if isinstance(request, Fork):
        return ForkReply(error=ErrorCode.ENOTASK) if proc is None else _spawn(w, proc.pid)
    if isinstance(request, Exit):
        if proc is None:
            return ExitReply(error=ErrorCode.ENOTASK)
        if proc.pid == INIT_PID:
            return ExitReply(error=ErrorCode.EINVAL)
        _end(w, proc, request.status)
        return ExitReply(error=ErrorCode.OK)
    if isinstance(request, Kill):
        victim = w.lx.process(request.pid)
        if proc is None or victim is None:
            return KillReply(error=ErrorCode.ENOTASK)
        if victim.pid == INIT_PID:
            return KillReply(error=ErrorCode.EINVAL)
        if victim.state is ProcState.RUNNING:
            _end(w, victim, KILLED_STATUS)
        return KillReply(error=ErrorCode.OK)
    if isinstance(request, Wait):
        if proc is None:
            return WaitReply(error=ErrorCode.ENOTASK)
        children = [
            c for c in w.lx.processes if c.parent == proc.pid and request.pid in (-1, c.pid)
        ]
        if not children:
            return WaitReply(error=ErrorCode.ENOTASK)
        for child in children:
            if child.state is ProcState.ZOMBIE:
                w.put(processes=tuple(p for p in w.lx.processes if p.pid != child.pid))
                return WaitReply(error=ErrorCode.OK, pid=child.pid, status=child.status)
        return WaitReply(error=ErrorCode.OK, pid=0)
    if isinstance(request, Read):
        if proc is None:
            return ReadReply(error=ErrorCode.ENOTASK)
        if request.fd < 0 or request.nbytes < 0:
            return ReadReply(error=ErrorCode.EINVAL)
        return ReadReply(error=ErrorCode.OK, nbytes=request.nbytes)
    raise TypeError(f"not a Linux request: {type(request).__name__}")


Step: TypeAlias = tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState | None, LinuxState]


def step(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    tsv: ts.TsState | None,
    lx: LinuxState,
    sender: ThreadId,
    request: LinuxRequest,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState | None, LinuxState, LinuxReply]:
    """One Linux system call by ``sender`` to server ``lx``: new states and the reply."""
    w = _World(ks, rs, tsv, lx)
    reply = _syscall(w, sender, request)
    return w.ks, w.rs, w.tsv, w.lx, reply


def boot(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    tsv: ts.TsState | None,
    me: int,
    strategy: Strategy,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState | None, LinuxState, ForkReply]:
    """An L4Linux server boots: it learns its strategy and starts init (pid 1)."""
    lx = LinuxState(me=me, strategy=strategy, cache_size=cache_size if strategy.caches else 0)
    w = _World(ks, rs, tsv, lx)
    reply = _spawn(w, parent=0)
    return w.ks, w.rs, w.tsv, w.lx, reply


def shutdown(
    ks: kernel.KernelState, rs: rmgr.RmgrState, tsv: ts.TsState | None, lx: LinuxState
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState | None, ts.TsReply | rmgr.RmgrReply]:
    """The server exits as a whole client: the task server (RMGR in merged) reclaims."""
    w = _World(ks, rs, tsv, lx)
    if lx.strategy.uses_task_server:
        reply: ts.TsReply | rmgr.RmgrReply | IpcError = w.ts(ts.Exit())
        assert not isinstance(reply, IpcError), reply
    else:
        reply = w.rmgr(rmgr.FreeClient(owner=lx.me))
    return w.ks, w.rs, w.tsv, reply


@attrs.frozen(kw_only=True)
class LinuxBoot:
    """Harness to an L4Linux server at boot: strategy, task server, cache; start init."""

    strategy: Strategy
    task_server: ThreadId = NIL_ID
    cache_size: int = DEFAULT_CACHE_SIZE


@attrs.frozen(kw_only=True)
class LinuxShutdown:
    """Harness to an L4Linux server: exit as a whole client (the task server reclaims)."""
