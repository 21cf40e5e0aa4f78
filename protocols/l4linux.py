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
running process of the server gets ``ENOTASK`` (``getpid`` answers pid 0).
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from protocols.ids import ThreadId

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "INIT_PID",
    "KILLED_STATUS",
    "LinuxState",
    "ProcState",
    "Process",
    "Strategy",
]

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
