"""Task numbers and thread ids with the L4 V2 x86 layout.

A V2 x86 thread id at osfree-project/l4env commit 0e5dd12a (2007-02) is 64 bit:
``version_low:10, lthread:7, task:11, version_high:4, site:17, chief:11, nest:4``
(l4/pkg/l4sys/include/ARCH-x86/L4API-l4v2/types.h@0e5dd12a:33-41;
kernel/fiasco/src/abi/l4_types.cpp@0e5dd12a:1210-1248); from b719d2c3 (2007-06) on it is
32 bit, the first four fields only (types.h@e91a37df:33-38).  Either way there are 2048
task numbers, 128 threads per task and a 14-bit version.  ``l4_task_equal`` compares
every field but lthread, version included; ``l4_tasknum_equal`` the task number only
(types.h@0e5dd12a:568-580, @e91a37df:394-405).  A task id is the thread id of its lthread 0.

The ``site``, ``chief`` and ``nest`` fields are not modelled: Fiasco implements chiefs
only for task creation rights (they are kept in the kernel's task table, not in ids)
and there is one site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

__all__ = [
    "BOOT_TASK",
    "KERNEL_TASK",
    "LTHREADS_PER_TASK",
    "NIL_ID",
    "RMGR_TASK",
    "SIGMA0_TASK",
    "TASK_COUNT",
    "VERSION_COUNT",
    "FIRST_USER_TASK",
    "ThreadId",
    "task_id",
]

TASK_COUNT: Final = 2048
"""Task numbers 0..2047 (11 bits)."""
LTHREADS_PER_TASK: Final = 128
"""Threads 0..127 per task (7 bits)."""
VERSION_COUNT: Final = 1 << 14
"""Versions 0..16383 (10 low + 4 high bits)."""

KERNEL_TASK: Final = 0
"""Task 0 holds the kernel's own threads; it is the chief of the boot tasks."""
SIGMA0_TASK: Final = 2
"""sigma0, the root pager (Fiasco kernel/fiasco/src/kern/config.cpp@0e5dd12a:97-103)."""
RMGR_TASK: Final = 4
"""The boot task, the resource manager RMGR (Fiasco config.cpp@0e5dd12a:97-103)."""
BOOT_TASK: Final = RMGR_TASK
FIRST_USER_TASK: Final = 5
"""At boot every task number above 4 is inactive with RMGR as its chief."""


def _in_range(limit: int, what: str) -> Callable[[Any, attrs.Attribute[int], int], None]:
    def check(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int:
            raise TypeError(f"{what} must be an int, got {type(value).__name__}")
        if not 0 <= value < limit:
            raise ValueError(f"{what} {value} out of range 0..{limit - 1}")

    return check


@attrs.frozen(order=True, repr=False)
class ThreadId:
    """An L4 V2 thread id: task number, local thread number and version.

    The nil id (all fields zero) names no thread; ``ThreadId.nil()`` returns it.
    """

    task: int = attrs.field(validator=_in_range(TASK_COUNT, "task number"))
    lthread: int = attrs.field(default=0, validator=_in_range(LTHREADS_PER_TASK, "lthread"))
    version: int = attrs.field(default=0, validator=_in_range(VERSION_COUNT, "version"))

    @classmethod
    def nil(cls) -> ThreadId:
        """Return the nil id."""
        return NIL_ID

    @property
    def is_nil(self) -> bool:
        """True for the nil id."""
        return self.task == 0 and self.lthread == 0 and self.version == 0

    @property
    def task_id(self) -> ThreadId:
        """The id of this thread's task (its lthread 0, same version)."""
        return ThreadId(self.task, 0, self.version)

    def with_version(self, version: int) -> ThreadId:
        """The same thread with another version."""
        return ThreadId(self.task, self.lthread, version % VERSION_COUNT)

    def next_version(self) -> ThreadId:
        """The same thread with the version incremented (wrapping at 14 bits)."""
        return self.with_version(self.version + 1)

    def __repr__(self) -> str:
        if self.is_nil:
            return "nil"
        return f"t{self.task}.{self.lthread}v{self.version}"

    __str__ = __repr__

    @classmethod
    def parse(cls, text: str) -> ThreadId:
        """Parse the ``repr`` form back (``t17.0v3`` or ``nil``)."""
        text = text.strip()
        if text == "nil":
            return NIL_ID
        try:
            head, version = text[1:].split("v")
            task, lthread = head.split(".")
            if not text.startswith("t"):
                raise ValueError
            return cls(int(task), int(lthread), int(version))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a thread id: {text!r} (expected e.g. t17.0v3)") from exc


NIL_ID: Final = ThreadId(0, 0, 0)


def task_id(task: int, version: int = 0) -> ThreadId:
    """The task id (lthread 0) of task number ``task`` with ``version``."""
    return ThreadId(task, 0, version)
