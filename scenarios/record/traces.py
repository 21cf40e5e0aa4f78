"""Recorded traces of the scenarios, recorded once per process and priced many times.

A trace does not depend on the machine profile (actors never count cycles), so the
reproduce report and the mitigations scenario price the same recorded run under many
profiles.  Each function runs the actors and returns the events of the measured part
only; results are memoised per arguments (the runs are deterministic in their events).
"""

from __future__ import annotations

import functools
from typing import Final

from actors import boot
from actors.native_linux import NativeSystem
from actors.task_server import TsInit
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.linux import Getpid, LinuxRequest, Read
from protocols.trace import Event
from scenarios.record.l4world import TASKS, fork_exit_pairs, l4linux_loop

__all__ = ["MODES", "READ_BYTES", "boot_init", "fork_pairs", "syscall_loop"]

MODES: Final = ("native", "l4linux")
READ_BYTES: Final = 4096
"""A blocking read of one page."""


def _request(name: str) -> LinuxRequest:
    if name == "getpid":
        return Getpid()
    assert name == "read", f"no loop for {name!r}"
    return Read(fd=0, nbytes=READ_BYTES)


@functools.lru_cache(maxsize=16)
def syscall_loop(
    call: str, mode: str, calls: int, edition: str | Edition = DEFAULT_EDITION.name
) -> tuple[Event, ...]:
    """One process makes the system call ``call`` ("getpid" or "read") ``calls`` times
    (``edition`` is that of the L4 system; native Linux has none)."""
    assert mode in MODES, f"unknown mode {mode!r}"
    if mode == "native":
        with NativeSystem() as world:
            mark = world.trace.mark()
            world.repeat(world.processes[0], _request(call), calls)
            return world.trace.since(mark)
    return l4linux_loop(_request(call), calls, edition=edition)


@functools.lru_cache(maxsize=16)
def fork_pairs(
    strategy: str, pairs: int, edition: str | Edition = DEFAULT_EDITION.name
) -> tuple[Event, ...]:
    """``pairs`` fork + exit + wait of an L4Linux process under ``strategy``."""
    return fork_exit_pairs(strategy, pairs, edition)


@functools.lru_cache(maxsize=8)
def boot_init(
    by_count: bool, managed: int, edition: str | Edition = DEFAULT_EDITION.name
) -> tuple[Event, ...]:
    """The task server's init: get and free every task, or ask RMGR for the count."""
    with boot(task_count=TASKS, task_server=True, edition=edition) as system:
        assert system.task_server is not None
        ref = system.ref(system.task_server)
        mark = system.trace.mark()
        ref.ask(TsInit(managed=managed, by_count=by_count), timeout=system.config.timeout * 4)
        return system.trace.since(mark)
