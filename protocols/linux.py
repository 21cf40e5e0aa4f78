"""The Linux system-call protocol between a user process and the Linux server.

On L4Linux every system call is an IPC call from the process's thread to the L4Linux
server thread and its reply (the seed: two context switches per call).
On native Linux the same requests trap into a monolithic kernel in the process's own
address space (no IPC); the message types are shared so both can be compared.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, ThreadId

__all__ = [
    "Exit",
    "ExitReply",
    "Fork",
    "ForkReply",
    "Getpid",
    "GetpidReply",
    "Kill",
    "KillReply",
    "LinuxReply",
    "LinuxRequest",
    "Read",
    "ReadReply",
    "Wait",
    "WaitReply",
]


@attrs.frozen(kw_only=True)
class Getpid:
    """Process to the Linux server: ``sys_getpid()``."""


@attrs.frozen(kw_only=True)
class GetpidReply:
    """Linux server to the process: its pid."""

    pid: int


@attrs.frozen(kw_only=True)
class Fork:
    """Process to the Linux server: ``sys_fork()``; the child gets a new task."""


@attrs.frozen(kw_only=True)
class ForkReply:
    """Linux server to the parent: the child's pid and task id, or an error."""

    error: ErrorCode
    pid: int = 0
    task: ThreadId = NIL_ID


@attrs.frozen(kw_only=True)
class Exit:
    """Process to the Linux server: ``sys_exit(status)``; its task is stopped."""

    status: int = 0


@attrs.frozen(kw_only=True)
class ExitReply:
    """Linux server to the exiting process (in the model only: a real exit never returns)."""

    error: ErrorCode


@attrs.frozen(kw_only=True)
class Kill:
    """Process to the Linux server: ``sys_kill(pid, SIGKILL)``."""

    pid: int


@attrs.frozen(kw_only=True)
class KillReply:
    """Linux server to the process: whether the victim was killed."""

    error: ErrorCode


@attrs.frozen(kw_only=True)
class Wait:
    """Process to the Linux server: ``sys_wait4(pid)``, ``pid=-1`` for any child; no blocking."""

    pid: int = -1


@attrs.frozen(kw_only=True)
class WaitReply:
    """Linux server to the process: the reaped child's pid and exit status, or an error."""

    error: ErrorCode
    pid: int = 0
    status: int = 0


@attrs.frozen(kw_only=True)
class Read:
    """Process to the Linux server: a blocking ``sys_read(fd, nbytes)``."""

    fd: int
    nbytes: int


@attrs.frozen(kw_only=True)
class ReadReply:
    """Linux server to the process: how many bytes were read, or an error."""

    error: ErrorCode
    nbytes: int = 0


LinuxRequest: TypeAlias = Getpid | Fork | Exit | Kill | Wait | Read
LinuxReply: TypeAlias = GetpidReply | ForkReply | ExitReply | KillReply | WaitReply | ReadReply
