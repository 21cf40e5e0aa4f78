"""Declared working sets: the virtual pages each piece of code touches, for the trace.

The machine model (``scenarios.cost.machine``) prices pages, not instructions: a region is a
tuple of virtual page numbers, touched as a whole (``L4Thread.touch``).  The sizes are
modelling assumptions, kept minimal and uniform: code that runs touches at least a text
page, a data page and a stack page.  With an untagged TLB every address-space switch
flushes them, so an L4Linux system call refills the process's three pages and the
Linux server's three (the seed: 6 TLB misses per getpid); the reproduce
report marks that figure as calibrated because these sizes were chosen with it in view.

Region names the IPC path touches by itself: ``call`` (before a thread sends an IPC),
``dispatch`` (when it receives one) and a unit of work's name (``linux.getpid``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["APP", "L4LINUX", "RMGR", "TASK_SERVER"]

APP: Final[Mapping[str, tuple[int, ...]]] = {
    "call": (0x08048, 0x0804A, 0xBFFFE),
}
"""A Linux process making a system call: text (loop, libc stub), data, stack."""

L4LINUX: Final[Mapping[str, tuple[int, ...]]] = {
    "dispatch": (0xA0010, 0xA7F00),
    "call": (0xA0010, 0xA7F00),
    "linux.getpid": (0xA0118,),
    "linux.fork": tuple(range(0xA0140, 0xA0148)) + tuple(range(0xA6000, 0xA6008)),
    "linux.exit": (0xA0150, 0xA0151, 0xA6000, 0xA6001),
    "linux.wait": (0xA0158,),
    "linux.kill": (0xA0159,),
    "linux.read": (0xA0160, 0xA0161, 0xA5000),
}
"""The L4Linux server (a user task): exception/syscall dispatch (entry code, the server
thread's stack with the current task; the same pages when it calls the task server or
RMGR), and the code and data of each system call; fork copies the parent's page tables
and task structure (16 pages)."""

TASK_SERVER: Final[Mapping[str, tuple[int, ...]]] = {
    "dispatch": (0x01000, 0x01010, 0x01F00),
    "call": (0x01000, 0x01010, 0x01F00),
}
"""The task server's request loop: text, task records, stack (also when it calls RMGR)."""

RMGR: Final[Mapping[str, tuple[int, ...]]] = {
    "dispatch": (0x00800, 0x00810, 0x00BF0),
}
"""RMGR's request loop: text, owner table, stack."""
