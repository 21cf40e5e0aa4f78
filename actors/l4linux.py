"""The L4Linux server thread: Linux system calls and task management by strategy.

A mutable implementation of ``protocols.l4linux`` (whose docstring defines the four
strategies, their sources and the Linux semantics kept): here each strategy is the
sources' call sequence, call by call, each citing its lines.  Call graph: process ->
this server -> task server (or RMGR in ``merged``) -> RMGR -> kernel; the server also
traps into the kernel itself to start and stop the tasks it is chief of.  Every
system-call handler records the body of the call as a unit of work ``linux.<name>`` for
the cost model.
"""

from __future__ import annotations

from typing import Any

from actors import working_sets
from actors.faults import ExitEvent
from actors.images import EIP_PROCESS
from actors.thread import L4Thread, handles
from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.editions import Fix
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, RMGR_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.l4linux import (
    DEFAULT_CACHE_SIZE,
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
    Read,
    ReadReply,
    Wait,
    WaitReply,
)

__all__ = ["L4LinuxServer", "LinuxBoot", "LinuxShutdown", "LoadCacheModule"]


class _Proc:
    __slots__ = ("parent", "pid", "state", "status", "task")

    def __init__(self, pid: int, task: ThreadId, parent: int) -> None:
        self.pid, self.task, self.parent = pid, task, parent
        self.state = ProcState.RUNNING
        self.status = 0


class L4LinuxServer(L4Thread):
    """The L4Linux server thread (a boot module started by RMGR)."""

    WORKING_SETS = working_sets.L4LINUX
    DISPATCH_WORK = "l4linux.dispatch"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.strategy = Strategy.CLASSIC
        self.ts = NIL_ID
        self.cache_size = DEFAULT_CACHE_SIZE
        self.procs: dict[int, _Proc] = {}
        self.slots: list[ThreadId] = []
        """The cache's slots in slot order: the id each one stores."""
        self.cache: list[ThreadId] = []
        """The slots not taken, in slot order."""
        self.retired: set[ThreadId] = set()
        self.next_pid = INIT_PID

    # -- harness ----------------------------------------------------------------------

    def on_control(self, message: Any) -> Any:
        """Boot (start init), load the cache module, shutdown, a process's exit event.

        Runs on the server's thread."""
        if isinstance(message, LinuxBoot):
            self.strategy, self.ts = message.strategy, message.task_server
            self.cache_size = message.cache_size if message.strategy.caches else 0
            return self._spawn(parent=0)
        if isinstance(message, LoadCacheModule):
            if self.strategy.caches:
                self.fill_cache()
            return len(self.slots)
        if isinstance(message, LinuxShutdown):
            if self.strategy.uses_task_server:
                reply = self.call(self.ts, ts.Exit())
                if getattr(reply, "error", None) is not ErrorCode.ENOTFOUND:
                    return reply
                # Not a client simple_ts manages (a boot module): the events server's
                # exit event ends it with its tasks (protocols.l4linux.shutdown).
                server = self.runtime.lookup(self.ts)
                if server is None:
                    return reply
                return server.ask(ExitEvent(task=self.tid), timeout=self.runtime.timeout)
            return self.call(task_id(RMGR_TASK), rmgr.FreeClient(owner=self.tid.task))
        if isinstance(message, ExitEvent):
            # A process of mine died: it ends as if killed (stop its task, zombie).
            proc = self._caller(message.task)
            if proc is None or proc.pid == INIT_PID:
                return KillReply(error=ErrorCode.ENOTASK if proc is None else ErrorCode.EINVAL)
            self._end(proc, KILLED_STATUS)
            return KillReply(error=ErrorCode.OK)
        return super().on_control(message)

    # -- task management by strategy (the call sequences of protocols.l4linux) ----------

    def _ok_task(self, reply: Any) -> ThreadId | ErrorCode:
        if isinstance(reply, IpcError):
            return reply.code
        if reply.error is not ErrorCode.OK:
            return ErrorCode(reply.error)
        return ThreadId(reply.task.task, 0, reply.task.version)

    def acquire(self) -> ThreadId | ErrorCode:
        """Get an inactive task to run a new process in (its id for the new incarnation)."""
        if self.strategy is Strategy.CLASSIC:
            # l4lx_task_number_allocate: l4ts_allocate_task (task.c@07d143c8:61-69)
            return self._ok_task(self.call(self.ts, ts.Allocate()))
        if self.strategy is Strategy.MERGED:
            return self._ok_task(self.call(task_id(RMGR_TASK), rmgr.AllocateChief()))
        if self.strategy.caches:
            # l4ts_allocate_task: the hook first (client.c@552f19d0:109-112)
            for i, slot in enumerate(self.slots):
                if slot in self.cache:
                    given = self.reuse_id(slot)
                    self.slots[i] = given
                    self.cache.remove(slot)
                    return given
            return self.library_allocate()
        # l4ts_allocate_task2(0, &task) (task.c@72b0736c:62-74)
        return self._ok_task(self.call(self.ts, ts.AllocateChief()))

    def library_allocate(self) -> ThreadId | ErrorCode:
        """The task library's allocate: the parent server's allocate, then IPCCAP_HACK."""
        got = self._ok_task(self.call(self.ts, ts.AllocateChief()))
        if isinstance(got, ThreadId):
            self.call(got, CapProbe(), timeout=0.5)  # client.c@552f19d0:117-125
        return got

    def reuse_id(self, cached: ThreadId) -> ThreadId:
        """The id the allocate hook hands out: the stored one (a new version if fixed)."""
        if self.edition.has(Fix.TASK_CACHE_REUSES_OLD_ID):
            return cached.next_version()
        return cached  # taskcache.c@552f19d0:64

    def start_task(self, task: ThreadId) -> ErrorCode:
        """Start ``task`` with a process image and this server as its pager."""
        if self.strategy is Strategy.CLASSIC:
            # l4ts_create_task (task.c@07d143c8:198-210); on failure the number is
            # freed again (process_gen.c@07d143c8:58-70)
            create = ts.Create(
                task=task,
                eip=EIP_PROCESS,
                pager=self.tid,
                prio=PRIO_USER_PROCESS,
                resname=RESNAME,
            )
            reply = self.call(self.ts, create)
            error = reply.code if isinstance(reply, IpcError) else ErrorCode(reply.error)
            if error is not ErrorCode.OK:
                self.call(self.ts, ts.Free(task=task))
            return error
        # l4_task_new with this thread as pager (task.c@72b0736c:230-237)
        new = kernel.TaskNew(
            dest=task, mcp_or_new_chief=kernel.MAX_MCP, eip=EIP_PROCESS, pager=self.tid
        )
        if not self._task_new(new):
            return ErrorCode.ENOTCHIEF
        if self.strategy is not Strategy.MERGED:
            # l4lx_task_prio_set (task.c@72b0736c:195-212)
            read = self.syscall(kernel.ThreadSchedule(dest=task))
            if isinstance(read, kernel.ThreadScheduleReply) and read.prio >= 0:
                self.syscall(kernel.ThreadSchedule(dest=task, prio=PRIO_SERVER_PROC))
        return ErrorCode.OK

    def stop_task(self, task: ThreadId) -> None:
        """Stop a process's task and give it back (or return it to the cache)."""
        if self.strategy is Strategy.CLASSIC:
            # l4lx_task_delete then, if it worked, l4lx_task_number_free
            # (process_gen.c@07d143c8:89-104; task.c@07d143c8:130-147, 245-252)
            options = ts.KillOption.SYNC | ts.KillOption.NOEV
            killed = self.call(self.ts, ts.Kill(task=task, options=options))
            if not isinstance(killed, IpcError) and killed.error is ErrorCode.OK:
                self.call(self.ts, ts.Free(task=task))
            return
        # l4_task_new(id, myself, nil): delete, stay chief (task.c@72b0736c:289-292)
        if not self._task_new(kernel.TaskNew(dest=task, mcp_or_new_chief=self.tid.task_id)):
            return
        if self.strategy.caches and task in self.slots and task not in self.cache:
            # the free hook (taskcache.c@552f19d0:74-88)
            self.cache = [t for t in self.slots if t in self.cache or t == task]
            return
        self.give_back(task)

    def give_back(self, task: ThreadId) -> None:
        """Hand the chief right to the task server (RMGR in merged), then free2."""
        if self.strategy is Strategy.MERGED:
            if self._task_new(kernel.TaskNew(dest=task, mcp_or_new_chief=task_id(RMGR_TASK))):
                self.call(task_id(RMGR_TASK), rmgr.Free2(task=task))
            return
        # task.c@72b0736c:147-155 (client.c@552f19d0:243-253 for the cache's library)
        if self._task_new(kernel.TaskNew(dest=task, mcp_or_new_chief=self.ts)):
            self.call(self.ts, ts.Free2(task=task))

    def fill_cache(self) -> None:
        """The cache module's init: allocate every slot; on a failure free them again."""
        got: list[ThreadId] = []
        for _ in range(self.cache_size):
            task = self.library_allocate()
            if isinstance(task, ErrorCode):
                for earlier in reversed(got):  # taskcache.c@552f19d0:98-104
                    self.give_back(earlier)
                return
            got.append(task)
        self.slots, self.cache = list(got), list(got)

    def _task_new(self, request: kernel.TaskNew) -> bool:
        reply = self.syscall(request)
        return isinstance(reply, kernel.TaskNewReply) and reply.task == request.dest.task_id

    def _spawn(self, parent: int) -> ForkReply:
        got = self.acquire()
        if isinstance(got, ErrorCode):
            return ForkReply(error=got)
        error = self.start_task(got)
        if error is not ErrorCode.OK:
            return ForkReply(error=error)
        pid = self.next_pid
        self.next_pid += 1
        self.procs[pid] = _Proc(pid, got, parent)
        return ForkReply(error=ErrorCode.OK, pid=pid, task=got)

    def _end(self, proc: _Proc, status: int) -> None:
        """A process exits: stop its task, make it a zombie, pass its children to init."""
        self.stop_task(proc.task)
        self.retired.add(proc.task)
        proc.state, proc.status = ProcState.ZOMBIE, status
        for child in self.procs.values():
            if child.parent == proc.pid:
                child.parent = INIT_PID

    def _caller(self, sender: ThreadId) -> _Proc | None:
        for p in self.procs.values():
            if p.state is ProcState.RUNNING and p.task == sender.task_id:
                return p
        return None

    # -- Linux system calls (run on the server's thread) -------------------------------

    @handles(Getpid)
    def getpid(self, sender: ThreadId, msg: Getpid) -> GetpidReply:
        """``sys_getpid``: the caller's pid (0 if it is not my process)."""
        self.work("linux.getpid")
        proc = self._caller(sender)
        return GetpidReply(pid=proc.pid if proc else 0)

    @handles(Fork)
    def fork(self, sender: ThreadId, msg: Fork) -> ForkReply:
        """``sys_fork``: a new process in a new task, by this server's strategy."""
        self.work("linux.fork")
        proc = self._caller(sender)
        if proc is None:
            return ForkReply(error=ErrorCode.ENOTASK)
        return self._spawn(parent=proc.pid)

    @handles(Exit)
    def exit(self, sender: ThreadId, msg: Exit) -> ExitReply:
        """``sys_exit``: stop the caller's task; it stays a zombie until waited for."""
        self.work("linux.exit")
        proc = self._caller(sender)
        if proc is None:
            return ExitReply(error=ErrorCode.ENOTASK)
        if proc.pid == INIT_PID:
            return ExitReply(error=ErrorCode.EINVAL)
        self._end(proc, msg.status)
        return ExitReply(error=ErrorCode.OK)

    @handles(Kill)
    def kill(self, sender: ThreadId, msg: Kill) -> KillReply:
        """``sys_kill(pid, SIGKILL)``: the victim exits with ``KILLED_STATUS``."""
        self.work("linux.kill")
        if self._caller(sender) is None:
            return KillReply(error=ErrorCode.ENOTASK)
        victim = self.procs.get(msg.pid)
        if victim is None:
            return KillReply(error=ErrorCode.ENOTASK)
        if victim.pid == INIT_PID:
            return KillReply(error=ErrorCode.EINVAL)
        if victim.state is ProcState.RUNNING:
            self._end(victim, KILLED_STATUS)
        return KillReply(error=ErrorCode.OK)

    @handles(Wait)
    def wait(self, sender: ThreadId, msg: Wait) -> WaitReply:
        """``sys_wait4`` without blocking: reap a zombie child, pid 0 if none exited yet."""
        self.work("linux.wait")
        proc = self._caller(sender)
        if proc is None:
            return WaitReply(error=ErrorCode.ENOTASK)
        children = [
            c
            for c in sorted(self.procs.values(), key=lambda c: c.pid)
            if c.parent == proc.pid and msg.pid in (-1, c.pid)
        ]
        if not children:
            return WaitReply(error=ErrorCode.ENOTASK)
        for child in children:
            if child.state is ProcState.ZOMBIE:
                del self.procs[child.pid]
                return WaitReply(error=ErrorCode.OK, pid=child.pid, status=child.status)
        return WaitReply(error=ErrorCode.OK, pid=0)

    @handles(Read)
    def read(self, sender: ThreadId, msg: Read) -> ReadReply:
        """A blocking ``sys_read``: the model delivers the bytes at once."""
        self.work("linux.read")
        if self._caller(sender) is None:
            return ReadReply(error=ErrorCode.ENOTASK)
        if msg.fd < 0 or msg.nbytes < 0:
            return ReadReply(error=ErrorCode.EINVAL)
        self.work("wait.read")  # blocked until the data arrives
        return ReadReply(error=ErrorCode.OK, nbytes=msg.nbytes)

    # -- observation ------------------------------------------------------------------

    def snapshot(self) -> LinuxState:
        """Processes, cache and retired ids as a ``protocols.l4linux.LinuxState``."""
        return LinuxState(
            me=self.tid.task,
            strategy=self.strategy,
            cache_size=self.cache_size,
            processes=tuple(
                Process(pid=p.pid, task=p.task, parent=p.parent, state=p.state, status=p.status)
                for p in sorted(self.procs.values(), key=lambda p: p.pid)
            ),
            slots=tuple(self.slots),
            cache=tuple(self.cache),
            retired=frozenset(self.retired),
            next_pid=self.next_pid,
        )
