"""What an L4Linux server knows: strategies, processes, the task cache's slots.

The data of ``protocols.l4linux`` (whose docstring gives the rules and their sources),
kept apart so the spec module holds only rules.  ``protocols.l4linux`` re-exports every
name here.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from protocols.ids import NIL_ID, ThreadId

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
    "LoadCacheModule",
    "LinuxState",
    "ProcState",
    "Process",
    "Strategy",
]

EIP_L4LINUX: Final = 0x3000
"""Start address of an L4Linux server's code (selects its image in the actor system)."""
EIP_PROCESS: Final = 0x4000
"""Start address of a Linux user process (selects its image in the actor system)."""

DEFAULT_CACHE_SIZE: Final = 5
"""Slots of the ``lx_task_cache`` example: ``TASK_CACHE_SIZE`` 5
(osfree-project/l4env l4/pkg/task/examples/lx_task_cache/taskcache.c@552f19d0:35)."""
KILLED_STATUS: Final = -9
"""Exit status of a process killed with ``sys_kill`` (SIGKILL)."""
INIT_PID: Final = 1
PRIO_USER_PROCESS: Final = 10
"""``CONFIG_L4_PRIO_USER_PROCESS``, default 10: the priority the 2007-02 L4Linux asks the
task server to give a process (osfree-project/l4linux-l4env arch/l4/Kconfig@07d143c8:243-247)."""
RESNAME: Final = "L4Linux task"
"""The resource name the 2007-02 L4Linux gives the task server's ``create``, which passes
it to RMGR's ``set_task_id`` (osfree-project/l4linux-l4env
arch/l4/l4lxlib/l4env/task.c@07d143c8:206-210)."""
PRIO_SERVER_PROC: Final = 64
"""``CONFIG_L4_PRIO_SERVER_PROC``, default 64: the priority the 2007-12 L4Linux sets itself
(osfree-project/l4linux-l4env arch/l4/Kconfig@72b0736c:269-273)."""


class Strategy(enum.Enum):
    """How an L4Linux server gets and gives back the tasks of its processes.

    ``classic``: L4Linux 2007-02 with the task server (osfree-project/l4linux-l4env
    arch/l4/l4lxlib/l4env/task.c@07d143c8:61-69, 198-257); ``chief``: L4Linux 2007-12,
    the allocate2 path (same file @72b0736c:62-74, 135-163, 214-298); ``chief+cache``:
    ``chief`` with the lx_task_cache module (osfree-project/l4env
    l4/pkg/task/examples/lx_task_cache/taskcache.c@552f19d0:57-113); ``merged``: a
    what-if of the seed's with no source (no task server, RMGR hands out tasks)."""

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
    slots: tuple[ThreadId, ...] = ()
    """The task cache's slots in slot order: the id each one stores (taken or not)."""
    cache: tuple[ThreadId, ...] = ()
    """The slots not taken, in slot order: inactive tasks this server is chief of."""
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


@attrs.frozen(kw_only=True)
class CapProbe:
    """L4Linux to lthread 0 of a task it was just given: the C library's ``IPCCAP_HACK``.

    A send with timeout 0 (words 23, 42) to a task that is not running: it fails with
    ``ENOT_EXISTENT`` and changes nothing (osfree-project/l4env
    l4/pkg/task/lib/client/client.c@552f19d0:24, 117-125)."""

    w0: int = 23
    w1: int = 42


@attrs.frozen(kw_only=True)
class LinuxBoot:
    """Harness to an L4Linux server at boot: strategy, task server, cache; start init."""

    strategy: Strategy
    task_server: ThreadId = NIL_ID
    cache_size: int = DEFAULT_CACHE_SIZE


@attrs.frozen(kw_only=True)
class LoadCacheModule:
    """Harness to an L4Linux server once every server runs init: load the task cache module
    (``chief+cache`` only; nothing otherwise).  Answers the number of slots filled."""


@attrs.frozen(kw_only=True)
class LinuxShutdown:
    """Harness to an L4Linux server: exit as a whole client (the task server reclaims)."""
