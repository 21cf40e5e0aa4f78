"""The L4Linux server's task management by strategy, as the C sources behave.

An L4Linux server runs every Linux process in an L4 task of its own, whose lthread 0 has
the server as its pager.  How it gets, starts, stops and gives back those tasks is the
**strategy**, chosen at boot.  In the model one ``Fork`` is the parent's fork and the
child's first dispatch together, and one ``Exit`` (or ``Kill``) the child's
``exit_thread``; each rule below is written as its effect on the tables (the task
server's, RMGR's and the kernel's, through their own specs, and this server's process
table, cache slots and retired ids) and its reply.  The actor
(``actors.l4linux.L4LinuxServer``) does the same call by call.  Only single-threaded
processes are modelled: a CLONE_VM child is another lthread of its parent's task and
reaches no server (osfree-project/l4linux-l4env arch/l4/l4lxlib/l4env/task.c@07d143c8:105-128,
232-257).

``classic`` -- L4Linux 2007-02 with the task server (osfree-project/l4linux-l4env @07d143c8):

* fork: task server ``allocate`` in copy_thread
  (arch/l4/kernel/arch-i386/process.c@07d143c8:203-220;
  arch/l4/l4lxlib/l4env/task.c@07d143c8:61-69, 149-172), then at the child's first
  dispatch task server ``create`` with this server's thread as pager
  (arch/l4/kernel/process_gen.c@07d143c8:22-51; task.c@07d143c8:198-230).  The source asks
  for priority ``CONFIG_L4_PRIO_USER_PROCESS`` (10) and resource name "L4Linux task";
  ``ts.Create`` carries neither, so the model leaves them to the task server.  A refused
  allocate answers its error (the source: -EBUSY, "No task no left").  A refused create
  frees the number again (task server ``free``) and the child dies
  (process_gen.c@07d143c8:58-70): fork answers the create's error.  The generic_ts
  library repeats create every 10 ms while it gets ``EUSED`` (osfree-project/l4env
  l4/pkg/generic_ts/lib/clientlib/open.c@0e5dd12a:77-90); a task that stays terminating
  would make that loop endless, so the model takes ``EUSED`` as a failure.
* exit: task server ``kill(id, SYNC|NOEV)`` (NOEV: the task is not on the hybrid list),
  then, only if the kill succeeded, task server ``free``; a failed kill keeps the number
  allocated so it is never used again (process_gen.c@07d143c8:73-107;
  task.c@07d143c8:130-147, 232-257).

``chief`` -- L4Linux 2007-12, the ``allocate2`` path (osfree-project/l4linux-l4env @72b0736c;
``CONFIG_L4_USE_TS`` selects the classic calls, and nothing in the tree sets it):

* fork (the child's first dispatch, arch/l4/kernel/dispatch.c@72b0736c:559-591, 634-649):
  task server ``allocate2(0)`` (``ts.AllocateChief``; task.c@72b0736c:62-74, 165-188);
  then its own ``l4_task_new(id, ALIEN|RAISE_EXCEPTION, 0, 0, pager=this server)``; a
  reply other than the id is a failure, after which the number is kept and not freed
  (task.c@72b0736c:214-239; dispatch.c@72b0736c:588-591): fork answers ``ENOTCHIEF``.
  Then two ``l4_thread_schedule``: read lthread 0's parameters and, if valid, set
  priority ``CONFIG_L4_PRIO_SERVER_PROC`` (64) (task.c@72b0736c:195-212, 238).
* exit (arch/l4/kernel/process_gen.c@72b0736c:17-58): its own ``l4_task_new(id,
  itself, nil)`` deletes the task and keeps the chief right (task.c@72b0736c:258-298); if
  refused, nothing more (the number is never freed).  Then ``l4_task_new(id,
  task_server, nil)`` hands the right to the task server and, if that succeeded, task
  server ``free2`` (task.c@72b0736c:135-163).

``chief+cache`` -- the ``lx_task_cache`` kernel module (osfree-project/l4env
l4/pkg/task/examples/lx_task_cache/taskcache.c@552f19d0) on top of ``chief``.  The module
hooks the allocate and free of the task library it is linked with, osfree-project/l4env
l4/pkg/task/lib/client/client.c@552f19d0 (94-135, 226-255): there allocate asks the
parent server for a task whose chief the client becomes (the task server's
``allocate2``, ``ts.AllocateChief``) and probes it with one IPC (``CapProbe``,
``IPCCAP_HACK``, 117-125); free hands the chief right to the server and tells it (the
task server's ``free2``, ``ts.Free2``).  The library has no ``free2`` of its own, while
task.c@72b0736c:151-154 calls ``l4ts_free2_task`` after handing the right over itself:
the sources do not fit together, so the model lets the cached L4Linux free through the
library (hook first, then hand-over and ``free2``).

* module init, after init runs: ``cache_size`` (5) allocates fill the slots, all not
  taken; if one fails the ones before are freed and the module does not load (no cache)
  (taskcache.c@552f19d0:35, 91-113).
* fork: the allocate hook gives the lowest slot not taken and marks it taken, with no
  server call; the id is the stored one, **unchanged** (taskcache.c@552f19d0:57-71;
  client.c@552f19d0:109-112).  With every slot taken, the library's allocate.  Then the
  ``chief`` start (its own ``l4_task_new`` and the two ``l4_thread_schedule``).
* exit: the ``chief`` delete; then the free hook takes the id back only if it equals
  (``l4_task_equal``, version included) a taken slot's id, with no server call
  (taskcache.c@552f19d0:74-88; client.c@552f19d0:238-241); any other id is freed by the
  library.
* ``Fix.TASK_CACHE_REUSES_OLD_ID`` (``hardened``): the allocate hook hands out the stored
  id with its version incremented and stores that, so an old id never reaches the
  next incarnation.

``merged`` is a what-if with no source (the seed's "this could also be included to
RMGR"): no task server; fork = RMGR ``AllocateChief`` + its own ``l4_task_new``; exit =
its own stop, chief right back to RMGR, RMGR ``Free2``.

Reply codes: the task server's and RMGR's errors are passed on as they come; an IPC
failure answers its ``IpcError`` code; a refused ``l4_task_new`` at start is
``ENOTCHIEF``.

Linux semantics kept by the model (no source needed): pids count up from 1 per server;
``init`` (pid 1, started at boot) cannot exit or be killed (``EINVAL``); children of an
exiting process pass to init; ``wait`` never blocks (``pid=0`` when children exist but
none has exited, ``ENOTASK`` when there is no such child); ``kill`` of a zombie succeeds
and does nothing; a killed process exits with status ``KILLED_STATUS``.  A thread that is
not a running process of the server gets ``ENOTASK`` (``getpid`` answers pid 0).
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.editions import DEFAULT_EDITION, Edition, Fix
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, RMGR_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.l4linux_state import (
    DEFAULT_CACHE_SIZE,
    EIP_L4LINUX,
    EIP_PROCESS,
    INIT_PID,
    KILLED_STATUS,
    PRIO_SERVER_PROC,
    PRIO_USER_PROCESS,
    RESNAME,
    CapProbe,
    LinuxBoot,
    LinuxShutdown,
    LinuxState,
    LoadCacheModule,
    Process,
    ProcState,
    Strategy,
)
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
    "DEFAULT_CACHE_SIZE",
    "EIP_L4LINUX",
    "EIP_PROCESS",
    "INIT_PID",
    "KILLED_STATUS",
    "PRIO_SERVER_PROC",
    "PRIO_USER_PROCESS",
    "RESNAME",
    "CapProbe",
    "LinuxBoot",
    "LinuxShutdown",
    "LinuxState",
    "LoadCacheModule",
    "ProcState",
    "Process",
    "Strategy",
    "boot",
    "load_cache",
    "shutdown",
    "step",
]


# -- the reference spec ---------------------------------------------------------------


class _World:
    """Scratch copies of the tables one L4Linux step changes, and its edition."""

    def __init__(
        self,
        ks: kernel.KernelState,
        rs: rmgr.RmgrState,
        tsv: ts.TsState | None,
        lx: LinuxState,
        edition: Edition,
    ) -> None:
        self.ks, self.rs, self.tsv, self.lx, self.edition = ks, rs, tsv, lx, edition
        self.me = ks.tasks[lx.me].id
        self.ts_id = ks.tasks[tsv.me].id if tsv is not None else NIL_ID

    def ts(self, request: ts.TsRequest) -> ts.TsReply | IpcError:
        """The task server's effect and answer (its own spec); IPC error if it is gone."""
        if self.tsv is None or not self.ks.is_active(self.tsv.me):
            return IpcError(
                code=ErrorCode.ENOT_EXISTENT, dest=self.ts_id, request=type(request).__name__
            )
        self.ks, self.rs, self.tsv, reply = ts.step(
            self.ks, self.rs, self.tsv, self.me, request, edition=self.edition
        )
        return reply

    def rmgr(self, request: rmgr.RmgrRequest) -> rmgr.RmgrReply:
        """RMGR's effect and answer (its own spec)."""
        self.ks, self.rs, reply = rmgr.step(
            self.ks, self.rs, self.me, request, edition=self.edition
        )
        return reply

    def kernel(self, request: kernel.KernelRequest) -> kernel.KernelReply:
        """The kernel's effect and answer (its own spec) for a system call of this server."""
        self.ks, reply = kernel.step(self.ks, self.me, request, edition=self.edition)
        return reply

    def put(self, **changes: object) -> None:
        self.lx = attrs.evolve(self.lx, **changes)  # type: ignore[arg-type]


def _error(reply: ts.TsReply | rmgr.RmgrReply | IpcError) -> ErrorCode:
    return reply.code if isinstance(reply, IpcError) else reply.error


def _got(reply: ts.TsReply | rmgr.RmgrReply | IpcError) -> ThreadId | ErrorCode:
    """The task id an allocate handed out, or its error."""
    error = _error(reply)
    if error is not ErrorCode.OK:
        return error
    assert not isinstance(reply, IpcError)
    return reply.task.task_id


def _made(w: _World, request: kernel.TaskNew) -> bool:
    """``l4_task_new`` by this server: whether the kernel did it (the id came back)."""
    reply = w.kernel(request)
    return isinstance(reply, kernel.TaskNewReply) and reply.task == request.dest.task_id


def _take_slot(w: _World) -> ThreadId | None:
    """The allocate hook: the lowest slot not taken is taken; its id (new in hardened)."""
    lx = w.lx
    if not lx.cache:
        return None
    free = lx.cache[0]
    given = free.next_version() if w.edition.has(Fix.TASK_CACHE_REUSES_OLD_ID) else free
    index = lx.slots.index(free)
    w.put(slots=(*lx.slots[:index], given, *lx.slots[index + 1 :]), cache=lx.cache[1:])
    return given


def _return_slot(w: _World, task: ThreadId) -> bool:
    """The free hook: an id equal to a taken slot's id becomes not taken (slot order kept)."""
    lx = w.lx
    if task not in lx.slots or task in lx.cache:
        return False
    w.put(cache=tuple(t for t in lx.slots if t in lx.cache or t == task))
    return True


def _library_allocate(w: _World) -> ThreadId | ErrorCode:
    """The task library's allocate: the task server's ``allocate2``, then the probe."""
    got = _got(w.ts(ts.AllocateChief()))
    # The probe (CapProbe) goes to a task that is not running: no effect on any table.
    return got


def _give_back(w: _World, task: ThreadId) -> None:
    """Chief right to the task server (RMGR in merged), then ``free2`` if that worked."""
    if w.lx.strategy is Strategy.MERGED:
        if _made(w, kernel.TaskNew(dest=task, mcp_or_new_chief=task_id(RMGR_TASK))):
            w.rmgr(rmgr.Free2(task=task))
        return
    if _made(w, kernel.TaskNew(dest=task, mcp_or_new_chief=w.ts_id)):
        w.ts(ts.Free2(task=task))


def _acquire(w: _World) -> ThreadId | ErrorCode:
    strategy = w.lx.strategy
    if strategy is Strategy.CLASSIC:
        return _got(w.ts(ts.Allocate()))
    if strategy is Strategy.MERGED:
        return _got(w.rmgr(rmgr.AllocateChief()))
    if strategy.caches:
        slot = _take_slot(w)
        if slot is not None:
            return slot
        return _library_allocate(w)
    return _got(w.ts(ts.AllocateChief()))


def _start(w: _World, task: ThreadId) -> ErrorCode:
    if w.lx.strategy is Strategy.CLASSIC:
        error = _error(
            w.ts(
                ts.Create(
                    task=task,
                    eip=EIP_PROCESS,
                    pager=w.me,
                    prio=PRIO_USER_PROCESS,
                    resname=RESNAME,
                )
            )
        )
        if error is not ErrorCode.OK:
            w.ts(ts.Free(task=task))
        return error
    made = _made(
        w, kernel.TaskNew(dest=task, mcp_or_new_chief=kernel.MAX_MCP, eip=EIP_PROCESS, pager=w.me)
    )
    if not made:
        return ErrorCode.ENOTCHIEF
    if w.lx.strategy is not Strategy.MERGED:
        read = w.kernel(kernel.ThreadSchedule(dest=task))
        if isinstance(read, kernel.ThreadScheduleReply) and read.prio >= 0:
            w.kernel(kernel.ThreadSchedule(dest=task, prio=PRIO_SERVER_PROC))
    return ErrorCode.OK


def _stop(w: _World, task: ThreadId) -> None:
    strategy = w.lx.strategy
    if strategy is Strategy.CLASSIC:
        killed = w.ts(ts.Kill(task=task, options=ts.KillOption.SYNC | ts.KillOption.NOEV))
        if _error(killed) is ErrorCode.OK:
            w.ts(ts.Free(task=task))
        return
    if not _made(w, kernel.TaskNew(dest=task, mcp_or_new_chief=w.me)):
        return
    if strategy.caches and _return_slot(w, task):
        return
    _give_back(w, task)


def _spawn(w: _World, parent: int) -> ForkReply:
    got = _acquire(w)
    if isinstance(got, ErrorCode):
        return ForkReply(error=got)
    error = _start(w, got)
    if error is not ErrorCode.OK:
        return ForkReply(error=error)
    pid = w.lx.next_pid
    proc = Process(pid=pid, task=got, parent=parent)
    w.put(processes=(*w.lx.processes, proc), next_pid=pid + 1)
    return ForkReply(error=ErrorCode.OK, pid=pid, task=got)


def _fill_cache(w: _World) -> None:
    """Module init: ``cache_size`` library allocates; on a failure free them all again."""
    got: list[ThreadId] = []
    for _ in range(w.lx.cache_size):
        task = _library_allocate(w)
        if isinstance(task, ErrorCode):
            for earlier in reversed(got):
                _give_back(w, earlier)
            return
        got.append(task)
    w.put(slots=tuple(got), cache=tuple(got))


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
    w = _World(ks, rs, tsv, lx, edition)
    reply = _syscall(w, sender, request)
    return w.ks, w.rs, w.tsv, w.lx, reply


def boot(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    tsv: ts.TsState | None,
    me: int,
    strategy: Strategy,
    cache_size: int = DEFAULT_CACHE_SIZE,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState | None, LinuxState, ForkReply]:
    """An L4Linux server boots: it starts init (pid 1).  Its cache comes later
    (``load_cache``)."""
    lx = LinuxState(me=me, strategy=strategy, cache_size=cache_size if strategy.caches else 0)
    w = _World(ks, rs, tsv, lx, edition)
    reply = _spawn(w, parent=0)
    return w.ks, w.rs, w.tsv, w.lx, reply


def load_cache(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    tsv: ts.TsState | None,
    lx: LinuxState,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState | None, LinuxState]:
    """``chief+cache``: the cache module is loaded once Linux runs (a module's init), after
    every server started init, so no init's task comes from a cache
    (taskcache.c@552f19d0:91-113, 133).  Other strategies: no change."""
    if not lx.strategy.caches:
        return ks, rs, tsv, lx
    w = _World(ks, rs, tsv, lx, edition)
    _fill_cache(w)
    return w.ks, w.rs, w.tsv, w.lx


def shutdown(
    ks: kernel.KernelState,
    rs: rmgr.RmgrState,
    tsv: ts.TsState | None,
    lx: LinuxState,
    *,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState | None, ts.TsReply | rmgr.RmgrReply]:
    """The server exits as a whole client: the task server (RMGR in merged) reclaims.

    The sources have no such call from L4Linux; the model's harness has the server call
    the task server's ``exit``.  simple_ts answers ``ENOTFOUND`` to a client it does not
    manage, and the L4Linux servers here are boot modules (RMGR starts them), so then
    the harness plays the events server: the task server gets the exit event
    (``ts.exit_event``), deletes the server through RMGR and reclaims what it owned.  In
    merged, RMGR's ``FreeClient`` does both."""
    w = _World(ks, rs, tsv, lx, edition)
    if lx.strategy.uses_task_server:
        reply: ts.TsReply | rmgr.RmgrReply | IpcError = w.ts(ts.Exit())
        assert not isinstance(reply, IpcError), reply
        if reply.error is ErrorCode.ENOTFOUND and w.tsv is not None:
            w.ks, w.rs, w.tsv, reply = ts.exit_event(w.ks, w.rs, w.tsv, w.me, edition=edition)
    else:
        reply = w.rmgr(rmgr.FreeClient(owner=lx.me))
    return w.ks, w.rs, w.tsv, reply
