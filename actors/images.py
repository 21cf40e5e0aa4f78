"""Program images: which thread class a new task runs, chosen by its start address (eip).

``l4_task_new`` names code by its ``eip``; the kernel actor looks the eip up here to
decide which actor class becomes the new task's lthread 0.  An eip nobody registered
starts an ``IdleThread``: a task whose code the model does not simulate.
"""

from __future__ import annotations

from typing import Any, Final

import pykka

from actors._runtime import Runtime, ThreadFactory
from actors.thread import L4Thread
from protocols.ids import ThreadId
from protocols.l4linux import EIP_L4LINUX, EIP_PROCESS
from protocols.task_server import EIP_TASK_SERVER

__all__ = [
    "EIP_CLIENT",
    "EIP_IDLE",
    "EIP_L4LINUX",
    "EIP_PROCESS",
    "EIP_TASK_SERVER",
    "IdleThread",
    "default_images",
    "factory",
]

EIP_IDLE: Final = 0x0
"""A task that runs code the model does not simulate: it exists and answers nothing."""
EIP_CLIENT: Final = 0x1000
"""A scripted client (``actors.client.ClientThread``), driven by tests and scenarios."""


class IdleThread(L4Thread):
    """A thread that exists (IPC to it reaches it) but speaks no protocol."""


def factory(cls: type[L4Thread]) -> ThreadFactory:
    """A thread factory that starts ``cls(runtime, tid, pager)``."""

    def start(runtime: Runtime, tid: ThreadId, pager: ThreadId) -> pykka.ActorRef[Any]:
        return cls.start(runtime, tid, pager)

    return start


def default_images() -> dict[int, ThreadFactory]:
    """The images every system knows."""
    from actors.client import ClientThread
    from actors.l4linux import L4LinuxServer
    from actors.process import ProcessThread
    from actors.task_server import TaskServer

    return {
        EIP_IDLE: factory(IdleThread),
        EIP_CLIENT: factory(ClientThread),
        EIP_TASK_SERVER: factory(TaskServer),
        EIP_L4LINUX: factory(L4LinuxServer),
        EIP_PROCESS: factory(ProcessThread),
    }
