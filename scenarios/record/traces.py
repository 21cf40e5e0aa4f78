"""Recorded traces of the scenarios, recorded once per process and priced many times.

A trace does not depend on the machine profile (actors never count cycles), so the
reproduce report, calibration and the mitigations scenario price the same recorded run
under many profiles.  Each function is a recorder of ``scenarios.record.l4world``
memoised per arguments (the runs are deterministic in their events).
"""

from __future__ import annotations

import functools

from protocols.editions import DEFAULT_EDITION, Edition
from protocols.trace import Event
from scenarios.record.l4world import MODES, READ_BYTES, record_boot, record_fork, record_syscalls

__all__ = ["MODES", "READ_BYTES", "boot_init", "fork_pairs", "syscall_loop"]


@functools.lru_cache(maxsize=16)
def syscall_loop(
    call: str, mode: str, calls: int, edition: str | Edition = DEFAULT_EDITION.name
) -> tuple[Event, ...]:
    """One process makes the system call ``call`` ("getpid" or "read") ``calls`` times
    (``edition`` is that of the L4 system; native Linux has none)."""
    return record_syscalls(call, mode, calls, edition=edition).events


@functools.lru_cache(maxsize=16)
def fork_pairs(
    strategy: str, pairs: int, edition: str | Edition = DEFAULT_EDITION.name
) -> tuple[Event, ...]:
    """``pairs`` fork + exit + wait of an L4Linux process under ``strategy``."""
    return record_fork(strategy, pairs, edition).events


@functools.lru_cache(maxsize=8)
def boot_init(
    by_count: bool, managed: int, edition: str | Edition = DEFAULT_EDITION.name
) -> tuple[Event, ...]:
    """The task server's init: get and free every task, or ask RMGR for the count."""
    return record_boot(by_count, managed, edition).events
