"""The machine model: a TLB, a cache, a timer, and the pricing of a trace.

``price(trace, profile)`` is a pure, deterministic function: it walks the events of a
trace (``protocols.trace``) in order on a simulated CPU and returns the cycles, the TLB and
cache misses and a breakdown of the cycles by category.  Actors never count cycles; this
module is the only place that turns what happened into what it cost.

How each event is priced (every number is a profile constant):

- ``IpcCall`` / ``IpcReply`` / ``IpcFail``: a kernel entry and exit (``cpu.trap_cycles``,
  category ``trap``) plus the kernel's IPC path (``ipc.path_cycles``, category ``ipc``),
  which touches ``ipc.kernel_pages`` kernel pages.
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

from protocols.ids import KERNEL_TASK
from protocols.linux import Exit, Fork, Getpid, Kill, Read, Wait
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work
from scenarios.profile import Profile

__all__ = [
    "price_each",
    "OTHER_TASK",
    "Cache",
    "Cost",
    "Params",
    "PricingError",
    "Tlb",
    "linux_apps",
    "price",
]

OTHER_TASK: Final = -1
"""The address space of the 'other process' the timer occasionally switches to."""
OTHER_BASE_PAGE: Final = 0x08048
"""Where the other process's pages start (a Linux program's text)."""
KERNEL_IPC_BASE_PAGE: Final = 0xF0000
"""Fiasco's IPC path pages (kernel, task 0)."""
KERNEL_TIMER_BASE_PAGE: Final = 0xF0100
"""The timer interrupt handler's pages (kernel, task 0)."""

_LINUX_REQUESTS: Final = (Getpid, Fork, Exit, Kill, Wait, Read)


class PricingError(Exception):
    """A trace the profile cannot price (e.g. a unit of work without a cost)."""


# -- the TLB ---------------------------------------------------------------------------


class Tlb:
    """A set-associative TLB with LRU replacement; entries are keyed by (task, page).

    ``sticky`` entries (global pages, small-space pages) survive ``flush``.  The set of a
    page is ``page % sets``.
    """

    def __init__(self, *, entries: int, ways: int) -> None:
        assert entries > 0 and ways > 0 and entries % ways == 0, "bad TLB geometry"
        self.ways = ways
        self.nsets = entries // ways
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
        sticky = self._sticky
        for i, ways in enumerate(self._sets):
            if ways:
                kept = [k for k in ways if k in sticky]
                dropped += len(ways) - len(kept)
                self._sets[i] = kept
        return dropped

    def __len__(self) -> int:
        return sum(len(w) for w in self._sets)


# -- the cache -------------------------------------------------------------------------


def _mix(a: int, b: int) -> int:
    """A fixed 64-bit hash of two ints (splitmix64 finaliser); no Python ``hash``."""
    x = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & (2**64 - 1)
    return x ^ (x >> 31)


class Cache:
    """A physically indexed, set-associative cache with LRU replacement.

    ``colours`` = sets * line / page: pages of the same colour compete for the same sets.
    ``access(frame_colour, frame, line)`` looks one line up.
    """

    def __init__(self, *, size_bytes: int, ways: int, line_bytes: int, page_bytes: int) -> None:
        assert size_bytes % (ways * line_bytes) == 0, "bad cache geometry"
        self.ways = ways
        self.nsets = size_bytes // (ways * line_bytes)
        self.lines_per_page = page_bytes // line_bytes
        self.colours = max(1, self.nsets // self.lines_per_page)
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


# -- parameters and results ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Params:
    """The profile's constants as typed fields (read once per pricing)."""

    mhz: int
    trap: int
    ipc_path: int
    ipc_pages: int
    cr3: int
    small_switch: int
    small_spaces: bool
    tlb_entries: int
    tlb_ways: int
    tagged: bool
    global_kernel: bool
    tlb_miss: int
    cache_bytes: int
    cache_ways: int
    line_bytes: int
    page_bytes: int
    lines_per_touch: int
    cache_miss: int
    coloring: bool
    hz: int
    tick: int
    timer_pages: int
    switch_every: int
    other_pages: int
    other_cycles: int
    work: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, p: Profile) -> Params:
        """Read every constant the model needs from profile ``p``."""
        return cls(
            mhz=p.get_int("cpu.mhz"),
            trap=p.get_int("cpu.trap_cycles"),
            ipc_path=p.get_int("ipc.path_cycles"),
            ipc_pages=p.get_int("ipc.kernel_pages"),
            cr3=p.get_int("switch.cr3_cycles"),
            small_switch=p.get_int("switch.small_cycles"),
            small_spaces=p.get_bool("small_spaces"),
            tlb_entries=p.get_int("tlb.entries"),
            tlb_ways=p.get_int("tlb.ways"),
            tagged=p.get_bool("tlb.tagged"),
            global_kernel=p.get_bool("tlb.global_kernel"),
            tlb_miss=p.get_int("tlb.miss_cycles"),
            cache_bytes=p.get_int("cache.size_kb") * 1024,
            cache_ways=p.get_int("cache.ways"),
            line_bytes=p.get_int("cache.line_bytes"),
            page_bytes=p.get_int("cache.page_bytes"),
            lines_per_touch=p.get_int("cache.lines_per_touch"),
            cache_miss=p.get_int("cache.miss_cycles"),
            coloring=p.get_bool("cache.coloring"),
            hz=p.get_int("timer.hz"),
            tick=p.get_int("timer.tick_cycles"),
            timer_pages=p.get_int("timer.kernel_pages"),
            switch_every=p.get_int("timer.switch_every"),
            other_pages=p.get_int("timer.other_pages"),
            other_cycles=p.get_int("timer.other_cycles"),
            work=tuple(sorted(p.work_units().items())),
        )

    @property
    def tick_period(self) -> int:
        """Cycles between two timer interrupts."""
        return self.mhz * 1_000_000 // self.hz


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


# -- pricing ---------------------------------------------------------------------------


def linux_apps(events: Iterable[Event]) -> frozenset[int]:
    """The tasks that act as Linux applications: they send Linux system-call requests."""
    apps: set[int] = set()
    for e in events:
        if type(e) is IpcCall and isinstance(e.message, _LINUX_REQUESTS):
            apps.add(e.src.task)
        elif type(e) is Syscall and isinstance(e.request, _LINUX_REQUESTS):
            apps.add(e.caller.task)
    return frozenset(apps)


class _Cpu:
    """The mutable state of one pricing run (private: ``price`` is the interface)."""

    def __init__(self, prm: Params, apps: frozenset[int], start: int) -> None:
        self.p = prm
        self.apps = apps
        self.tlb = Tlb(entries=prm.tlb_entries, ways=prm.tlb_ways)
        self.cache = Cache(
            size_bytes=prm.cache_bytes,
            ways=prm.cache_ways,
            line_bytes=prm.line_bytes,
            page_bytes=prm.page_bytes,
        )
        self.work = dict(prm.work)
        self.cur = start
        self.now = 0
        self.next_tick = prm.tick_period
        self.cycles: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.tlb_misses = 0
        self.cache_misses = 0
        self.override: str | None = None
        self._frames: dict[tuple[int, int], tuple[int, int]] = {}

    # -- charging --

    def charge(self, category: str, cycles: int) -> None:
        self.cycles[self.override or category] += cycles
        self.now += cycles

    # -- memory --

    def _frame(self, task: int, page: int) -> tuple[int, int]:
        """(colour, frame) of the physical page behind ``page`` of ``task``."""
        key = (task, page)
        got = self._frames.get(key)
        if got is None:
            h = _mix(task, page)
            colours = self.cache.colours
            if self.p.coloring and colours >= 2:
                half = colours // 2
                colour = half + h % (colours - half) if task in self.apps else h % half
            else:
                colour = h % colours
            got = (colour, (h >> 16) * colours + colour)
            self._frames[key] = got
        return got

    def touch(self, task: int, pages: Iterable[int]) -> None:
        p = self.p
        sticky = (task == KERNEL_TASK and p.global_kernel) or (p.small_spaces and task in self.apps)
        lpp = self.cache.lines_per_page
        for page in pages:
            if not self.tlb.access(task, page, sticky=sticky):
                self.tlb_misses += 1
                self.charge("tlb", p.tlb_miss)
            colour, frame = self._frame(task, page)
            first = _mix(frame, 7) % lpp
            for i in range(p.lines_per_touch):
                if not self.cache.access(colour, frame, (first + i) % lpp):
                    self.cache_misses += 1
                    self.charge("cache", p.cache_miss)

    def switch(self, src: int, dst: int) -> None:
        if src == dst:
            self.cur = dst
            return
        p = self.p
        self.counts["switches"] += 1
        if p.small_spaces and (src in self.apps or dst in self.apps):
            self.charge("switch", p.small_switch)
        else:
            self.charge("switch", p.cr3)
            if not p.tagged:
                self.counts["flushes"] += 1
                self.tlb.flush()
        self.cur = dst

    # -- events --

    def ipc(self) -> None:
        self.charge("trap", self.p.trap)
        self.charge("ipc", self.p.ipc_path)
        self.touch(
            KERNEL_TASK, range(KERNEL_IPC_BASE_PAGE, KERNEL_IPC_BASE_PAGE + self.p.ipc_pages)
        )

    def run(self, task: int) -> None:
        """The CPU must be in ``task``'s space to run its code: switch if it is not."""
        if task != self.cur and task != KERNEL_TASK:
            self.counts["sched_switches"] += 1
            self.switch(self.cur, task)

    def event(self, e: Event) -> None:
        kind = type(e)
        self.counts[kind.__name__] += 1
        if kind is Touch:
            assert isinstance(e, Touch)
            self.run(e.task)
            self.touch(e.task, e.pages)
        elif kind is Work:
            assert isinstance(e, Work)
            self.run(e.task)
            cost = self.work.get(e.unit)
            if cost is None:
                raise PricingError(f"the profile has no cost for work unit {e.unit!r}")
            self.charge("work." + e.unit.split(".", 1)[0], cost)
        elif kind is SpaceSwitch:
            assert isinstance(e, SpaceSwitch)
            self.switch(self.cur, e.dst)
        elif kind is IpcCall or kind is IpcFail:
            assert isinstance(e, IpcCall | IpcFail)
            self.run(e.src.task)
            self.ipc()
        elif kind is IpcReply:
            self.ipc()
        elif kind is Syscall:
            assert isinstance(e, Syscall)
            self.run(e.caller.task)
            self.charge("trap", self.p.trap)
        else:
            raise AssertionError(f"unknown trace event {kind.__name__}")
        while self.now >= self.next_tick:
            self.next_tick += self.p.tick_period
            self.timer_tick()

    def timer_tick(self) -> None:
        p = self.p
        self.override = "timer"
        self.counts["ticks"] += 1
        self.charge("timer", p.tick)
        self.touch(
            KERNEL_TASK, range(KERNEL_TIMER_BASE_PAGE, KERNEL_TIMER_BASE_PAGE + p.timer_pages)
        )
        if p.switch_every and self.counts["ticks"] % p.switch_every == 0:
            back = self.cur
            self.counts["other_runs"] += 1
            self.switch(back, OTHER_TASK)
            self.charge("timer", p.other_cycles)
            self.touch(OTHER_TASK, range(OTHER_BASE_PAGE, OTHER_BASE_PAGE + p.other_pages))
            self.switch(OTHER_TASK, back)
        self.override = None

    def result(self) -> Cost:
        return Cost(
            cycles=sum(self.cycles.values()),
            tlb_misses=self.tlb_misses,
            cache_misses=self.cache_misses,
            breakdown=tuple(sorted((k, v) for k, v in self.cycles.items() if v)),
            counts=tuple(sorted(self.counts.items())),
        )


def _first_task(events: tuple[Event, ...]) -> int:
    for e in events:
        if type(e) is IpcCall:
            return e.src.task
        if type(e) is SpaceSwitch:
            return e.src
        if type(e) is Syscall:
            return e.caller.task
        if type(e) in (Touch, Work) and e.task != KERNEL_TASK:  # type: ignore[union-attr]
            return e.task  # type: ignore[union-attr]
    return KERNEL_TASK


def price(
    trace: Iterable[Event],
    profile: Profile | Params,
    *,
    apps: frozenset[int] | None = None,
) -> Cost:
    """Price ``trace`` on the machine ``profile`` describes; pure and deterministic.

    The CPU starts cold (empty TLB and cache) in the address space of the trace's first
    actor, at time 0.  ``apps`` overrides which tasks are Linux applications (for colouring
    and small spaces); by default they are read from the trace (``linux_apps``).
    """
    return price_each(trace, profile, apps=apps)[0]


def price_each(
    trace: Iterable[Event],
    profile: Profile | Params,
    *,
    apps: frozenset[int] | None = None,
) -> tuple[Cost, tuple[int, ...]]:
    """``price`` plus the cycles each event cost (they sum to ``Cost.cycles``).

    An event's cycles are those charged while the CPU processed it, timer interrupts that
    fell due during it included; the trace renderers show them per IPC hop.
    """
    events = tuple(trace)
    prm = profile if isinstance(profile, Params) else Params.of(profile)
    cpu = _Cpu(prm, linux_apps(events) if apps is None else apps, _first_task(events))
    each: list[int] = []
    spent = 0
    for e in events:
        cpu.event(e)
        total = cpu.now
        each.append(total - spent)
        spent = total
    cost = cpu.result()
    assert sum(each) == cost.cycles, "per-event cycles must add up to the total"
    return cost, tuple(each)
