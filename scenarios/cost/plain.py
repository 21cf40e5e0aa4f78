"""The pricing model, written plainly: the spec of what a trace costs.

``price_each(trace, profile)`` walks the events of a trace (``protocols.trace``) in order
on a simulated CPU, one method per kind of event on plain ``Tlb`` and ``Cache`` objects,
and returns the cycles, the TLB and cache misses and a breakdown of the cycles by
category.  Actors never count cycles; pricing is the only place that turns what happened
into what it cost.  ``scenarios.cost.machine.price`` computes exactly this with the fast
engine (``scenarios.cost.engine``); the tests require identical results, cycle for cycle.
Where things are (which pages the kernel touches, which frame and lines a page has) is in
``scenarios.cost.layout``, shared by both.

How each event is priced (every number is a profile constant):

- ``IpcCall`` / ``IpcReply`` / ``IpcFail``: a kernel entry and exit (``cpu.trap_cycles``,
  category ``trap``) plus the kernel's IPC path (``ipc.path_cycles``, category ``ipc``).
  The path's working set is touched on both sides of the address-space switch, each part
  in the space where the kernel touches it (``layout.ipc_entry_pages``, ``layout.ipc_exit_pages``):
  on entry, in the sender's space, the IPC code and data (``ipc.kernel_pages``), the
  sender's and the receiver's thread control block with its kernel stack
  (``ipc.tcb_pages`` each) and, for kernels that have them, the sender's UTCB and the KIP
  (``ipc.utcb_pages``, ``ipc.kip_pages``, user mappings of the sender's task); on exit,
  in the receiver's space right after the switch into it (at once if there is none), the
  IPC code and data, the receiver's control block and its UTCB and the KIP.  A failed IPC
  touches the entry side without a receiver and returns to the sender.
- ``SpaceSwitch``: a CR3 reload (``switch.cr3_cycles``); on an untagged TLB it flushes
  every entry that is not global.  With ``small_spaces`` a switch into or out of a
  Linux application's space is a segment reload (``switch.small_cycles``) that flushes
  nothing, and application entries survive every flush (they live in the region shared by
  all large spaces).  A tagged TLB is never flushed.
- ``Syscall``: a kernel entry and exit (``cpu.trap_cycles``).
- ``Touch``: each page goes through the TLB (a miss costs ``tlb.miss_cycles``) and
  ``cache.lines_per_touch`` of its lines go through the cache (``cache.miss_cycles``).
  Pages of task 0 (the kernel, Fiasco's or native Linux's) are global pages when
  ``tlb.global_kernel`` is set.
- ``Work``: ``work.<unit>`` cycles, category ``work.<first part of the unit name>``.

Where each rule is (``_Cpu``): a TLB or cache miss is counted in ``touch``, an
address-space switch and its flush in ``switch``, the IPC path in ``ipc`` and
``ipc_exit``, the scheduler's switch in ``run``, the timer in ``timer_tick``.

The CPU runs one address space at a time: an event of a task other than the current one
(a call, a system call, a touch or work by another user task) first switches to it, as
the scheduler would (counted as ``sched_switches``); the kernel (task 0) runs in every
space.

The timer interrupts every ``cpu.mhz * 1e6 / timer.hz`` cycles of simulated time (the
first tick one period after the start): the handler costs ``timer.tick_cycles`` and
touches ``timer.kernel_pages`` kernel pages; every ``timer.switch_every``-th tick another
process runs (``timer.other_cycles``, touching ``timer.other_pages`` pages of its own) and
the CPU then switches back.  Everything a tick costs is in category ``timer``.

The cache is physically indexed.  A virtual page's frame is a fixed hash of (task, page),
so which pages collide is arbitrary but the same on every run.  With ``cache.coloring``
the frame allocator gives the Linux applications the upper half of the page colours and
everyone else (kernel, Linux server, task server, RMGR) the lower half, so the two groups
never evict each other.  Which tasks are Linux applications is read from the trace: the
tasks that send Linux system-call requests (``protocols.linux``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Final

import attrs

from protocols.ids import KERNEL_TASK, ThreadId
from protocols.linux import Exit, Fork, Getpid, Kill, Read, Wait
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work
from scenarios.cost import layout
from scenarios.cost.layout import OTHER_TASK
from scenarios.cost.profile import Profile
from scenarios.cost.schema import Sections

__all__ = [
    "Cache",
    "Cost",
    "PricingError",
    "Tlb",
    "cache_geometry",
    "first_task",
    "linux_apps",
    "price_each",
    "sticky",
    "tlb_sets",
]

_LINUX_REQUESTS: Final = (Getpid, Fork, Exit, Kill, Wait, Read)


class PricingError(Exception):
    """A trace the profile cannot price (e.g. a unit of work without a cost)."""


@attrs.frozen(kw_only=True)
class Cost:
    """What a trace cost on a machine: totals, misses and cycles by category."""

    cycles: int
    tlb_misses: int
    cache_misses: int
    breakdown: tuple[tuple[str, int], ...]
    """Cycles per category, sorted by category name; they sum to ``cycles``."""
    counts: tuple[tuple[str, int], ...]
    """How many of each thing happened (events by kind, flushes, ticks, switches)."""

    def count(self, name: str) -> int:
        """One of ``counts`` (0 if it never happened)."""
        return dict(self.counts).get(name, 0)

    def category(self, name: str) -> int:
        """Cycles of one category of ``breakdown`` (0 if none)."""
        return dict(self.breakdown).get(name, 0)


# -- the TLB -----------------------------------------------------------------------------


def tlb_sets(entries: int, ways: int) -> int:
    """How many sets a TLB of ``entries`` entries and ``ways`` ways has."""
    assert entries > 0 and ways > 0 and entries % ways == 0, "bad TLB geometry"
    return entries // ways


def sticky(task: int, s: Sections, apps: frozenset[int]) -> bool:
    """Whether ``task``'s TLB entries survive a flush: global kernel pages, and with
    small spaces the Linux applications' pages (in the region every large space shares)."""
    return (task == KERNEL_TASK and s.tlb.global_kernel.value) or (
        s.small_spaces.value and task in apps
    )


class Tlb:
    """A set-associative TLB with LRU replacement; entries are keyed by (task, page).

    ``sticky`` entries (global pages, small-space pages) survive ``flush``.  The set of a
    page is ``page % sets``.
    """

    def __init__(self, *, entries: int, ways: int) -> None:
        self.ways = ways
        self.nsets = tlb_sets(entries, ways)
        self._sets: list[list[tuple[int, int]]] = [[] for _ in range(self.nsets)]
        self._sticky: set[tuple[int, int]] = set()

    def access(self, task: int, page: int, *, sticky: bool = False) -> bool:
        """Look ``page`` of ``task`` up; on a miss insert it (evicting the LRU way)."""
        key = (task, page)
        ways = self._sets[page % self.nsets]
        if key in ways:
            if ways[-1] != key:
                ways.remove(key)
                ways.append(key)
            return True
        if len(ways) >= self.ways:
            self._sticky.discard(ways.pop(0))
        ways.append(key)
        if sticky:
            self._sticky.add(key)
        return False

    def flush(self) -> int:
        """Drop every entry that is not sticky (a CR3 reload); returns how many."""
        dropped = 0
        for i, ways in enumerate(self._sets):
            kept = [k for k in ways if k in self._sticky]
            dropped += len(ways) - len(kept)
            self._sets[i] = kept
        return dropped

    def __len__(self) -> int:
        return sum(len(w) for w in self._sets)


# -- the cache ---------------------------------------------------------------------------


def cache_geometry(
    size_bytes: int, ways: int, line_bytes: int, page_bytes: int
) -> tuple[int, int, int]:
    """(sets, lines per page, colours) of a cache."""
    assert size_bytes % (ways * line_bytes) == 0, "bad cache geometry"
    nsets = size_bytes // (ways * line_bytes)
    lines_per_page = page_bytes // line_bytes
    return nsets, lines_per_page, max(1, nsets // lines_per_page)


class Cache:
    """A physically indexed, set-associative cache with LRU replacement.

    ``colours`` = sets * line / page: pages of the same colour compete for the same sets.
    ``access(frame_colour, frame, line)`` looks one line up.
    """

    def __init__(self, *, size_bytes: int, ways: int, line_bytes: int, page_bytes: int) -> None:
        self.ways = ways
        self.nsets, self.lines_per_page, self.colours = cache_geometry(
            size_bytes, ways, line_bytes, page_bytes
        )
        self._sets: list[list[tuple[int, int]]] = [[] for _ in range(self.nsets)]

    def access(self, colour: int, frame: int, line: int) -> bool:
        """Look up line ``line`` of physical ``frame`` (of colour ``colour``)."""
        key = (frame, line)
        ways = self._sets[(colour * self.lines_per_page + line) % self.nsets]
        if key in ways:
            if ways[-1] != key:
                ways.remove(key)
                ways.append(key)
            return True
        if len(ways) >= self.ways:
            ways.pop(0)
        ways.append(key)
        return False


# -- reading the trace --------------------------------------------------------------------


def linux_apps(events: Iterable[Event]) -> frozenset[int]:
    """The tasks that act as Linux applications: they send Linux system-call requests."""
    apps: set[int] = set()
    for e in events:
        if type(e) is IpcCall and isinstance(e.message, _LINUX_REQUESTS):
            apps.add(e.src.task)
        elif type(e) is Syscall and isinstance(e.request, _LINUX_REQUESTS):
            apps.add(e.caller.task)
    return frozenset(apps)


def first_task(events: tuple[Event, ...]) -> int:
    """The address space the CPU starts in: that of the trace's first user actor."""
    for e in events:
        if type(e) is IpcCall:
            return e.src.task
        if type(e) is SpaceSwitch:
            return e.src
        if type(e) is Syscall:
            return e.caller.task
        if isinstance(e, Touch | Work) and e.task != KERNEL_TASK:
            return e.task
    return KERNEL_TASK


# -- the CPU -----------------------------------------------------------------------------


class _Cpu:
    """The mutable state of one pricing run (private: ``price_each`` is the interface)."""

    def __init__(self, s: Sections, apps: frozenset[int], start: int) -> None:
        self.s = s
        self.apps = apps
        self.tlb = Tlb(entries=s.tlb.entries.value, ways=s.tlb.ways.value)
        self.cache = Cache(
            size_bytes=s.cache.size_kb.value * 1024,
            ways=s.cache.ways.value,
            line_bytes=s.cache.line_bytes.value,
            page_bytes=s.cache.page_bytes.value,
        )
        self.work = {unit: c.value for unit, c in s.work.items()}
        self.cur = start
        self.now = 0
        self.tick_period = s.cpu.mhz.value * 1_000_000 // s.timer.hz.value
        self.next_tick = self.tick_period
        self.cycles: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.tlb_misses = 0
        self.cache_misses = 0
        self.override: str | None = None
        """The category every charge goes to while a timer tick runs (``timer``)."""
        self.pending: ThreadId | None = None
        """The receiver of the last IPC while its exit side waits for a switch into it."""

    def charge(self, category: str, cycles: int) -> None:
        self.cycles[self.override or category] += cycles
        self.now += cycles

    # -- the rules --

    def touch(self, task: int, pages: Iterable[int]) -> None:
        """Every page through the TLB, ``cache.lines_per_touch`` of its lines through the
        cache: here, and only here, TLB and cache misses are counted and charged."""
        s = self.s
        keep = sticky(task, s, self.apps)
        group = (task in self.apps) if s.cache.coloring.value else None
        for page in pages:
            if not self.tlb.access(task, page, sticky=keep):
                self.tlb_misses += 1
                self.charge("tlb", s.tlb.miss_cycles.value)
            colour, frame = layout.frame(task, page, self.cache.colours, group)
            for line in layout.lines(
                frame, self.cache.lines_per_page, s.cache.lines_per_touch.value
            ):
                if not self.cache.access(colour, frame, line):
                    self.cache_misses += 1
                    self.charge("cache", s.cache.miss_cycles.value)

    def switch(self, src: int, dst: int) -> None:
        """An address-space switch: a segment reload into or out of a small space, else a
        CR3 reload that flushes an untagged TLB; then the IPC exit side waiting for it."""
        if src == dst:
            self.cur = dst
            return
        s = self.s
        self.counts["switches"] += 1
        if s.small_spaces.value and (src in self.apps or dst in self.apps):
            self.charge("switch", s.switch.small_cycles.value)
        else:
            self.charge("switch", s.switch.cr3_cycles.value)
            if not s.tlb.tagged.value:
                self.counts["flushes"] += 1
                self.tlb.flush()
        self.cur = dst
        if self.override is None and self.pending is not None and self.pending.task == dst:
            self.ipc_exit()

    def ipc(self, src: ThreadId, dst: ThreadId | None) -> None:
        """The IPC path: entry side in the sender's space; the exit side in the space of
        the receiver (``dst``, or the sender after a failure) at once or after the switch."""
        self.charge("trap", self.s.cpu.trap_cycles.value)
        self.charge("ipc", self.s.ipc.path_cycles.value)
        self.pending = None
        for task, pages in layout.ipc_entry_pages(self.s, src, dst):
            self.touch(task, pages)
        self.pending = src if dst is None else dst
        if self.pending.task in (self.cur, KERNEL_TASK):
            self.ipc_exit()

    def ipc_exit(self) -> None:
        assert self.pending is not None
        receiver, self.pending = self.pending, None
        for task, pages in layout.ipc_exit_pages(self.s, receiver):
            self.touch(task, pages)

    def run(self, task: int) -> None:
        """The CPU must be in ``task``'s space to run its code: switch if it is not."""
        if task != self.cur and task != KERNEL_TASK:
            self.counts["sched_switches"] += 1
            self.switch(self.cur, task)

    def timer_tick(self) -> None:
        """The handler; every ``switch_every``-th tick the other process runs a while."""
        s = self.s
        self.override = "timer"
        self.counts["ticks"] += 1
        self.charge("timer", s.timer.tick_cycles.value)
        self.touch(KERNEL_TASK, layout.timer_pages(s))
        every = s.timer.switch_every.value
        if every and self.counts["ticks"] % every == 0:
            back = self.cur
            self.counts["other_runs"] += 1
            self.switch(back, OTHER_TASK)
            self.charge("timer", s.timer.other_cycles.value)
            self.touch(OTHER_TASK, layout.other_pages(s))
            self.switch(OTHER_TASK, back)
        self.override = None

    # -- events --

    def event(self, e: Event) -> None:
        self.counts[type(e).__name__] += 1
        if isinstance(e, Touch):
            self.run(e.task)
            self.touch(e.task, e.pages)
        elif isinstance(e, Work):
            self.run(e.task)
            cost = self.work.get(e.unit)
            if cost is None:
                raise PricingError(f"the profile has no cost for work unit {e.unit!r}")
            self.charge("work." + e.unit.split(".", 1)[0], cost)
        elif isinstance(e, SpaceSwitch):
            self.switch(self.cur, e.dst)
        elif isinstance(e, IpcCall | IpcFail):
            self.pending = None
            self.run(e.src.task)
            self.ipc(e.src, e.dst if isinstance(e, IpcCall) else None)
        elif isinstance(e, IpcReply):
            self.ipc(e.src, e.dst)
        elif isinstance(e, Syscall):
            self.run(e.caller.task)
            self.charge("trap", self.s.cpu.trap_cycles.value)
        else:
            raise AssertionError(f"unknown trace event {type(e).__name__}")
        while self.now >= self.next_tick:
            self.next_tick += self.tick_period
            self.timer_tick()

    def result(self) -> Cost:
        return Cost(
            cycles=sum(self.cycles.values()),
            tlb_misses=self.tlb_misses,
            cache_misses=self.cache_misses,
            breakdown=tuple(sorted((k, v) for k, v in self.cycles.items() if v)),
            counts=tuple(sorted(self.counts.items())),
        )


def price_each(
    trace: Iterable[Event],
    profile: Profile,
    *,
    apps: frozenset[int] | None = None,
) -> tuple[Cost, tuple[int, ...]]:
    """The cost of ``trace`` on ``profile`` and the cycles of each event, plainly.

    The CPU starts cold (empty TLB and cache) in the address space of the trace's first
    actor, at time 0.  ``apps`` overrides which tasks are Linux applications (for colouring
    and small spaces); by default they are read from the trace (``linux_apps``).
    """
    events = tuple(trace)
    cpu = _Cpu(profile.sections, linux_apps(events) if apps is None else apps, first_task(events))
    each: list[int] = []
    spent = 0
    for e in events:
        cpu.event(e)
        each.append(cpu.now - spent)
        spent = cpu.now
    cost = cpu.result()
    assert sum(each) == cost.cycles, "per-event cycles must add up to the total"
    return cost, tuple(each)
