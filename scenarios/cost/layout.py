"""Where things are: the pages the kernel touches and the frame behind every page.

Both pricing engines (``scenarios.cost.plain``, the spec, and ``scenarios.cost.engine``,
the fast one) take these from here, so the two touch the same pages and lines:

- the kernel's IPC path touches ``ipc_entry_pages`` in the sender's space and
  ``ipc_exit_pages`` in the receiver's (what each side holds is in their docstrings);
- the timer handler touches ``timer_pages`` (kernel, task 0), the other process the timer
  lets run touches ``other_pages`` of its own space (``OTHER_TASK``);
- a virtual page's physical frame is a fixed hash of (task, page) (``frame``), so which
  pages collide in the cache is arbitrary but the same on every run; with colouring the
  Linux applications get the upper half of the page colours and everyone else the lower
  half; a touch uses ``lines_per_touch`` consecutive lines of the frame from a fixed,
  hashed first line (``lines``).
"""

from __future__ import annotations

from typing import Final

from protocols.ids import KERNEL_TASK, ThreadId
from scenarios.cost.schema import Sections

__all__ = [
    "KERNEL_IPC_BASE_PAGE",
    "KERNEL_TCB_BASE_PAGE",
    "KERNEL_TIMER_BASE_PAGE",
    "KIP_PAGE",
    "OTHER_BASE_PAGE",
    "OTHER_TASK",
    "TCB_STRIDE",
    "UTCB_BASE_PAGE",
    "Pages",
    "frame",
    "ipc_entry_pages",
    "ipc_exit_pages",
    "lines",
    "mix",
    "other_pages",
    "timer_pages",
]

OTHER_TASK: Final = -1
"""The address space of the 'other process' the timer occasionally switches to."""
OTHER_BASE_PAGE: Final = 0x08048
"""Where the other process's pages start (a Linux program's text)."""
KERNEL_IPC_BASE_PAGE: Final = 0xF0000
"""Fiasco's IPC path pages (kernel, task 0)."""
KERNEL_TIMER_BASE_PAGE: Final = 0xF0100
"""The timer interrupt handler's pages (kernel, task 0)."""
KERNEL_TCB_BASE_PAGE: Final = 0xC0000
"""Fiasco's thread control blocks, each with its kernel stack (``Mem_layout::Tcbs`` is
0xc0000000 in osfree-project/l4env kernel/fiasco/src/kern/ia32/mem_layout-ia32.cpp@e91a37df:13;
the entry code finds the current thread by masking the kernel stack pointer,
kern/ia32/low_level.h@e91a37df:176, so stack and control block share one block).  The model
numbers the blocks thread-major (``lthread * TCB_STRIDE + task``) so that the first threads
of different tasks fall into different sets of a set-associative TLB; the real layout is
task-major and would put them all into one set of a 64-set TLB, which a one-level TLB
model would exaggerate (a documented choice)."""
TCB_STRIDE: Final = 2048
"""Task numbers per lthread row of the control-block area (2048 tasks at e91a37df)."""
UTCB_BASE_PAGE: Final = 0xBF000
"""A thread's UTCB, a user mapping in its own task (kernels that have UTCBs)."""
KIP_PAGE: Final = 0xBFF00
"""The kernel info page, mapped into every task (kernels whose system-call stubs or IPC
path read it)."""

Pages = tuple[tuple[int, tuple[int, ...]], ...]
"""Working sets as (task, pages) pairs, touched in order."""


# -- the kernel's working sets ------------------------------------------------------------


def _tcb(s: Sections, t: ThreadId) -> tuple[int, ...]:
    n = s.ipc.tcb_pages.value
    first = KERNEL_TCB_BASE_PAGE + (t.lthread * TCB_STRIDE + t.task) * n
    return tuple(range(first, first + n))


def _user(s: Sections, t: ThreadId) -> Pages:
    utcb, kip = s.ipc.utcb_pages.value, s.ipc.kip_pages.value
    if t.task == KERNEL_TASK or not (utcb or kip):
        return ()
    first = UTCB_BASE_PAGE + t.lthread * utcb
    pages = (*range(first, first + utcb), *range(KIP_PAGE, KIP_PAGE + kip))
    return ((t.task, pages),)


def _path(s: Sections) -> tuple[int, ...]:
    return tuple(range(KERNEL_IPC_BASE_PAGE, KERNEL_IPC_BASE_PAGE + s.ipc.kernel_pages.value))


def ipc_entry_pages(s: Sections, src: ThreadId, dst: ThreadId | None) -> Pages:
    """What the IPC path touches in the sender's space, before any switch: its code and
    data, the sender's control block (and the receiver's, ``dst``, whose state it checks
    and whose registers it fills), then the sender's UTCB and the KIP."""
    kernel = _path(s) + _tcb(s, src) + (_tcb(s, dst) if dst is not None else ())
    return ((KERNEL_TASK, kernel), *_user(s, src)) if kernel else _user(s, src)


def ipc_exit_pages(s: Sections, dst: ThreadId) -> Pages:
    """What the IPC path touches in the receiver's space, after the switch into it: its
    code and data, the receiver's control block and kernel stack (the switch resumes the
    receiver on its own stack), then the receiver's UTCB and the KIP."""
    kernel = _path(s) + _tcb(s, dst)
    return ((KERNEL_TASK, kernel), *_user(s, dst)) if kernel else _user(s, dst)


def timer_pages(s: Sections) -> tuple[int, ...]:
    """The timer interrupt handler's pages (kernel, task 0)."""
    n = s.timer.kernel_pages.value
    return tuple(range(KERNEL_TIMER_BASE_PAGE, KERNEL_TIMER_BASE_PAGE + n))


def other_pages(s: Sections) -> tuple[int, ...]:
    """The pages the other process touches each time the timer lets it run."""
    return tuple(range(OTHER_BASE_PAGE, OTHER_BASE_PAGE + s.timer.other_pages.value))


# -- physical frames and cache lines --------------------------------------------------------


def mix(a: int, b: int) -> int:
    """A fixed 64-bit hash of two ints (splitmix64 finaliser); no Python ``hash``."""
    x = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & (2**64 - 1)
    return x ^ (x >> 31)


def frame(task: int, page: int, colours: int, group: bool | None) -> tuple[int, int]:
    """(colour, frame) of the physical page behind ``page`` of ``task``.

    ``group`` is None without colouring (any colour), else whether the task is a Linux
    application (upper half of the colours) or not (lower half); with fewer than two
    colours there is nothing to split.
    """
    h = mix(task, page)
    if group is None or colours < 2:
        colour = h % colours
    else:
        half = colours // 2
        colour = half + h % (colours - half) if group else h % half
    return colour, (h >> 16) * colours + colour


def lines(frame_number: int, lines_per_page: int, count: int) -> tuple[int, ...]:
    """The lines of a frame one touch uses: ``count`` in a row from a hashed first one."""
    first = mix(frame_number, 7) % lines_per_page
    return tuple((first + i) % lines_per_page for i in range(count))
