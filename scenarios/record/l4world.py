"""The recorders: one per scenario, each boots a fresh system, runs the scenario's loop and
keeps the loop's events.

``l4sim run``, ``trace``, ``reproduce``, ``calibrate`` and ``bench`` all record through
these functions, so every command prices and shows the same run.  A recorder boots a
system (``actors.boot``; native Linux for the native system-call loops), lets the init
process (pid 1) make its system calls, and returns a ``Recording``: only the events of
the measured loop (booting, the task server's init and starting init are not priced),
with what a checker needs to replay them (the boot arguments and the snapshot before the
loop; ``l4sim trace --format jsonl`` writes both into the trace file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import attrs

from actors import boot
from actors.native_linux import NativeSystem
from actors.task_server import TsInit
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.ids import ThreadId
from protocols.l4linux import Strategy
from protocols.linux import Exit, Fork, ForkReply, Getpid, LinuxRequest, Read, Wait
from protocols.snapshot import SystemSnapshot
from protocols.trace import Event

__all__ = [
    "MODES",
    "READ_BYTES",
    "STRATEGIES",
    "TASKS",
    "RecordError",
    "Recording",
    "fork_exit_loop",
    "record_boot",
    "record_fork",
    "record_syscalls",
]

TASKS: Final = 96
"""Task numbers in the kernel's table: the task server manages 64 of them."""
STRATEGIES: Final = tuple(s.value for s in Strategy)
MODES: Final = ("native", "l4linux")
READ_BYTES: Final = 4096
"""A blocking read of one page."""


class RecordError(RuntimeError):
    """The system did not do what the scenario's loop needs (a fork failed, say)."""


@attrs.frozen(kw_only=True)
class Recording:
    """The events of the measured part of a run, and what a checker needs to replay it."""

    events: tuple[Event, ...]
    boot: dict[str, Any]
    """``boot()``'s arguments (``{"native": True}`` for native Linux)."""
    initial: SystemSnapshot | None
    """The system's snapshot before the loop (None for native Linux)."""


def syscall_request(call: str) -> LinuxRequest:
    """The system call a loop makes: ``getpid`` or a blocking ``read`` of one page."""
    if call == "getpid":
        return Getpid()
    if call == "read":
        return Read(fd=0, nbytes=READ_BYTES)
    raise ValueError(f"no system-call loop for {call!r}")


@contextmanager
def _l4linux(
    strategy: str, edition: str | Edition, **kwargs: Any
) -> Iterator[tuple[Any, Callable[[], Recording]]]:
    with boot(task_count=TASKS, strategy=strategy, edition=edition, **kwargs) as system:
        initial = system.snapshot()
        mark = system.trace.mark()

        def done() -> Recording:
            return Recording(
                events=system.trace.since(mark), boot=system.boot_record(), initial=initial
            )

        yield system, done


def record_syscalls(
    call: str,
    mode: str,
    calls: int,
    strategy: str = "classic",
    edition: str | Edition = DEFAULT_EDITION.name,
) -> Recording:
    """One process makes the system call ``call`` ("getpid" or "read") ``calls`` times,
    on native Linux or on L4Linux (``strategy``, ``edition``: those of the L4 system)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    request = syscall_request(call)
    if mode == "native":
        with NativeSystem() as world:
            mark = world.trace.mark()
            world.repeat(world.processes[0], request, calls)
            return Recording(events=world.trace.since(mark), boot={"native": True}, initial=None)
    with _l4linux(strategy, edition, linux=1) as (system, done):
        init: ThreadId = system.init_processes[0]
        for _ in range(calls):
            reply = system.linux_call(init, request)
            if (
                isinstance(reply, Exception)
                or getattr(reply, "error", ErrorCode.OK) is not ErrorCode.OK
            ):
                raise RecordError(f"{call} failed: {reply!r}")
        return done()


def fork_exit_loop(system: Any, pairs: int) -> None:
    """init forks a child, the child exits, init reaps it; ``pairs`` times (the fork
    scenario's loop, on a booted L4Linux ``system``; the bench times it)."""
    init: ThreadId = system.init_processes[0]
    for _ in range(pairs):
        child = system.linux_call(init, Fork())
        if not isinstance(child, ForkReply) or child.error is not ErrorCode.OK:
            raise RecordError(f"fork failed: {child!r}")
        exited = system.linux_call(child.task, Exit())
        if exited.error is not ErrorCode.OK:
            raise RecordError(f"exit failed: {exited!r}")
        reaped = system.linux_call(init, Wait(pid=child.pid))
        if reaped.error is not ErrorCode.OK or reaped.pid != child.pid:
            raise RecordError(f"wait failed: {reaped!r}")


def record_fork(
    strategy: str, pairs: int, edition: str | Edition = DEFAULT_EDITION.name
) -> Recording:
    """The fork scenario's loop (``fork_exit_loop``) on a fresh system."""
    with _l4linux(strategy, edition, linux=1) as (system, done):
        fork_exit_loop(system, pairs)
        return done()


def record_boot(
    by_count: bool, managed: int, edition: str | Edition = DEFAULT_EDITION.name
) -> Recording:
    """The task server's init: get and free every task, or ask RMGR for the count."""
    with _l4linux("classic", edition, task_server=True) as (system, done):
        assert system.task_server is not None
        system.ref(system.task_server).ask(
            TsInit(managed=managed, by_count=by_count), timeout=system.config.timeout * 4
        )
        return done()
