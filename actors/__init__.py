"""The implementation: one Pykka actor per L4 thread or server, the IPC path, ``boot()``.

Actors emit trace events; they never count cycles.
"""

from __future__ import annotations

from actors.client import KERNEL, ClientThread, Perform
from actors.images import EIP_CLIENT, EIP_IDLE
from actors.system import BootConfig, System, boot
from actors.thread import L4Thread, handles

__all__ = [
    "EIP_CLIENT",
    "EIP_IDLE",
    "KERNEL",
    "BootConfig",
    "ClientThread",
    "L4Thread",
    "Perform",
    "System",
    "boot",
    "handles",
]
