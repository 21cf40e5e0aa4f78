"""Driving an L4Linux system for the scenarios: boot it, run a loop, return the trace.

Each function boots a fresh system (``actors.boot`` with one L4Linux server), lets the
init process (pid 1) make its system calls, and returns only the events of the measured
loop: booting, the task server's init and starting init are not priced.
"""

from __future__ import annotations

from typing import Final

from actors import boot
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.l4linux import Strategy
from protocols.linux import Exit, Fork, ForkReply, LinuxRequest, Wait
from protocols.trace import Event

__all__ = ["STRATEGIES", "TASKS", "fork_exit_pairs", "l4linux_loop"]

TASKS: Final = 96
"""Task numbers in the kernel's table: the task server manages 64 of them."""
STRATEGIES: Final = tuple(s.value for s in Strategy)


def l4linux_loop(
    request: LinuxRequest,
    calls: int,
    strategy: str = "classic",
    edition: str | Edition = DEFAULT_EDITION.name,
) -> tuple[Event, ...]:
    """init makes ``request`` ``calls`` times; the loop's events."""
    with boot(task_count=TASKS, linux=1, strategy=strategy, edition=edition) as system:
        init = system.init_processes[0]
        mark = system.trace.mark()
        for _ in range(calls):
            reply = system.linux_call(init, request)
            assert not isinstance(reply, Exception), reply
        return system.trace.since(mark)


def fork_exit_pairs(
    strategy: str, pairs: int, edition: str | Edition = DEFAULT_EDITION.name
) -> tuple[Event, ...]:
    """init forks a child, the child exits, init reaps it; ``pairs`` times; the events."""
    with boot(task_count=TASKS, linux=1, strategy=strategy, edition=edition) as system:
        init = system.init_processes[0]
        mark = system.trace.mark()
        for _ in range(pairs):
            child = system.linux_call(init, Fork())
            assert isinstance(child, ForkReply) and child.error is ErrorCode.OK, child
            done = system.linux_call(child.task, Exit())
            assert done.error is ErrorCode.OK, done
            reaped = system.linux_call(init, Wait(pid=child.pid))
            assert reaped.error is ErrorCode.OK and reaped.pid == child.pid, reaped
        return system.trace.since(mark)
