"""Native Linux, the baseline: processes trap into a monolithic kernel, no IPC.

On native Linux a system call is not a message to another thread: the process's own
thread enters kernel mode (``int 0x80``), runs the kernel's code in the same address
space and returns.  So ``NativeLinux`` is not an actor but a plain object whose ``trap``
runs on the calling process's thread; it records a ``Syscall`` event, the pages the
kernel's code touches (task 0, which Linux 2.6 maps with global pages: AMD's
22007E optimisation guide, TLB chapter) and the named units of work (the same
unit names as the L4Linux server, so
the body of ``getpid`` costs the same in both worlds).  There is no ``SpaceSwitch``:
kernel and process share one address space.

``NativeSystem`` is the native world: a runtime, the kernel and benchmark processes
(``NativeProcess`` actors, tasks ``FIRST_PID``, ...), stopped when its ``with`` block
ends.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import attrs
import pykka

from actors import working_sets
from actors._runtime import DEFAULT_TIMEOUT, Runtime, StopsOnExit, stop_actors
from actors.thread import L4Thread
from protocols.errors import ErrorCode
from protocols.ids import KERNEL_TASK, ThreadId
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
from protocols.trace import Syscall, Touch, Trace, Work

__all__ = [
    "APP_WORKING_SETS",
    "FIRST_PID",
    "NativeLinux",
    "NativeProcess",
    "NativeSystem",
    "Repeat",
]

FIRST_PID: Final = 5
"""Task number (and pid) of the first native process, as on L4 (tasks 5, 6, ...)."""

APP_WORKING_SETS: Final = working_sets.APP
"""A benchmark process making a system call: the same pages natively and on L4Linux."""


@attrs.frozen(kw_only=True)
class Repeat:
    """Harness to a benchmark process: make the system call ``request`` ``count`` times."""

    request: object
    count: int


class NativeLinux:
    """The monolithic kernel; ``trap`` runs on the thread of the process that traps."""

    WORKING_SETS: ClassVar[Mapping[str, tuple[int, ...]]] = {
        "entry": (0xC0102, 0xC0300),
        "getpid": (0xC0118, 0xC7F00),
        "fork": tuple(range(0xC0140, 0xC0148)) + tuple(range(0xC6000, 0xC6008)),
        "exit": (0xC0150, 0xC0151, 0xC6000, 0xC6001),
        "read": (0xC0160, 0xC0161, 0xC5000),
    }
    """Kernel code and data each system call touches (virtual pages, task 0, global)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self._lock = threading.Lock()
        self._next_pid = FIRST_PID + 1024
        self._children: dict[int, list[int]] = {}
        self._zombies: dict[int, list[tuple[int, int]]] = {}
        self._parent: dict[int, int] = {}

    def _touch(self, region: str) -> None:
        self.trace.record(Touch, task=KERNEL_TASK, region=region, pages=self.WORKING_SETS[region])

    def _work(self, unit: str) -> None:
        self.trace.record(Work, task=KERNEL_TASK, unit=unit)

    def trap(self, caller: ThreadId, request: LinuxRequest) -> LinuxReply:
        """``caller`` enters the kernel with ``request``; the kernel's code runs, returns."""
        with self._lock:
            self._touch("entry")
            reply = self._dispatch(caller.task, request)
            self.trace.record(Syscall, caller=caller, request=request, reply=reply)
            return reply

    def _dispatch(self, pid: int, request: LinuxRequest) -> LinuxReply:
        if isinstance(request, Getpid):
            self._touch("getpid")
            self._work("linux.getpid")
            return GetpidReply(pid=pid)
        if isinstance(request, Fork):
            self._touch("fork")
            self._work("linux.fork")
            child = self._next_pid
            self._next_pid += 1
            self._children.setdefault(pid, []).append(child)
            self._parent[child] = pid
            return ForkReply(error=ErrorCode.OK, pid=child, task=ThreadId(KERNEL_TASK))
        if isinstance(request, Exit):
            self._touch("exit")
            self._work("linux.exit")
            parent = self._parent.pop(pid, None)
            if parent is not None:
                self._children[parent].remove(pid)
                self._zombies.setdefault(parent, []).append((pid, request.status))
            return ExitReply(error=ErrorCode.OK)
        if isinstance(request, Wait):
            self._work("linux.wait")
            zombies = self._zombies.get(pid, [])
            for i, (child, status) in enumerate(zombies):
                if request.pid in (-1, child):
                    del zombies[i]
                    return WaitReply(error=ErrorCode.OK, pid=child, status=status)
            return WaitReply(error=ErrorCode.ENOTASK)
        if isinstance(request, Kill):
            self._work("linux.kill")
            return KillReply(error=ErrorCode.ENOTASK)
        assert isinstance(request, Read), f"unknown Linux request {request!r}"
        self._touch("read")
        self._work("linux.read")
        self._work("wait.read")
        return ReadReply(error=ErrorCode.OK, nbytes=request.nbytes)

    def exit_child(self, child: int, status: int = 0) -> LinuxReply:
        """A forked child (not simulated as a thread) runs ``exit``: trap on its behalf."""
        return self.trap(ThreadId(child), Exit(status=status))


class NativeProcess(L4Thread):
    """A benchmark process on native Linux; runs ``Repeat`` loops on its own thread."""

    WORKING_SETS: ClassVar[Mapping[str, tuple[int, ...]]] = APP_WORKING_SETS

    def __init__(self, runtime: Runtime, tid: ThreadId, linux: NativeLinux) -> None:
        super().__init__(runtime, tid)
        self.linux = linux

    def on_control(self, message: Any) -> Any:
        """``Repeat`` from the harness (runs on this process's thread)."""
        if isinstance(message, Repeat):
            assert isinstance(message.request, Getpid | Fork | Exit | Kill | Wait | Read)
            reply: object = None
            for _ in range(message.count):
                self.touch("call")
                reply = self.linux.trap(self.tid, message.request)
                if isinstance(reply, ForkReply) and reply.error is ErrorCode.OK:
                    self.linux.exit_child(reply.pid)
                    self.linux.trap(self.tid, Wait(pid=reply.pid))
            return reply
        return super().on_control(message)


class NativeSystem(StopsOnExit):
    """The native world: kernel plus ``processes`` benchmark processes; a context manager."""

    def __init__(self, *, processes: int = 1, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.runtime = Runtime(trace=Trace(), timeout=timeout)
        self.linux = NativeLinux(self.runtime.trace)
        self.processes: tuple[ThreadId, ...] = tuple(
            ThreadId(FIRST_PID + i) for i in range(processes)
        )
        self._refs: list[pykka.ActorRef[Any]] = []
        try:
            for tid in self.processes:
                ref = NativeProcess.start(self.runtime, tid, self.linux)
                self._refs.append(ref)
                self.runtime.register(tid, ref)
        except BaseException:
            self.stop()
            raise

    @property
    def trace(self) -> Trace:
        """Every event of the native world."""
        return self.runtime.trace

    def repeat(self, process: ThreadId, request: object, count: int) -> Any:
        """Make ``process`` issue ``request`` ``count`` times; the last reply."""
        ref = self.runtime.lookup(process)
        assert ref is not None, f"no native process {process}"
        return ref.ask(Repeat(request=request, count=count), timeout=self.runtime.timeout * 10)

    def stop(self) -> None:
        """Stop every process (idempotent)."""
        stop_actors(self._refs, self.runtime.timeout)
        self._refs.clear()
