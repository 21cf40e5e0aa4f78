"""The machine model: a TLB, a cache, a timer, and the pricing of a trace.

``price(trace, profile)`` is a pure, deterministic function: it walks the events of a
trace (``protocols.trace``) in order on a simulated CPU and returns the cycles, the TLB and
cache misses and a breakdown of the cycles by category.  Actors never count cycles; this
module is the only place that turns what happened into what it cost.

How each event is priced (every number is a profile constant):

- ``IpcCall`` / ``IpcReply`` / ``IpcFail``: a kernel entry and exit (``cpu.trap_cycles``,
  category ``trap``) plus the kernel's IPC path (``ipc.path_cycles``, category ``ipc``).
  The path's working set is touched on both sides of the address-space switch, each part
  in the space where the kernel touches it (``ipc_entry_pages``, ``ipc_exit_pages``):
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

import operator
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar, Final

import attrs

from protocols.ids import KERNEL_TASK, ThreadId
from protocols.linux import Exit, Fork, Getpid, Kill, Read, Wait
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work
from scenarios.cost.profile import Profile

__all__ = [
    "price_each",
    "OTHER_TASK",
    "ipc_entry_pages",
    "ipc_exit_pages",
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

_LINUX_REQUESTS: Final = (Getpid, Fork, Exit, Kill, Wait, Read)


class PricingError(Exception):
    """A trace the profile cannot price (e.g. a unit of work without a cost)."""


# -- the TLB ---------------------------------------------------------------------------


def _tlb_sets(entries: int, ways: int) -> int:
    """How many sets a TLB of ``entries`` entries and ``ways`` ways has."""
    assert entries > 0 and ways > 0 and entries % ways == 0, "bad TLB geometry"
    return entries // ways


class Tlb:
    """A set-associative TLB with LRU replacement; entries are keyed by (task, page).

    ``sticky`` entries (global pages, small-space pages) survive ``flush``.  The set of a
    page is ``page % sets``.
    """

    def __init__(self, *, entries: int, ways: int) -> None:
        self.ways = ways
        self.nsets = _tlb_sets(entries, ways)
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


def _cache_geometry(
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
        self.nsets, self.lines_per_page, self.colours = _cache_geometry(
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


# -- parameters and results ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Params:
    """The profile's constants as typed fields (read once per pricing)."""

    mhz: int
    trap: int
    ipc_path: int
    ipc_pages: int
    tcb_pages: int
    utcb_pages: int
    kip_pages: int
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
            tcb_pages=p.get_int("ipc.tcb_pages"),
            utcb_pages=p.get_int("ipc.utcb_pages"),
            kip_pages=p.get_int("ipc.kip_pages"),
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


# -- the kernel's IPC working set -------------------------------------------------------

Pages = tuple[tuple[int, tuple[int, ...]], ...]
"""Working sets as (task, pages) pairs, touched in order."""


def _tcb(p: Params, t: ThreadId) -> tuple[int, ...]:
    first = KERNEL_TCB_BASE_PAGE + (t.lthread * TCB_STRIDE + t.task) * p.tcb_pages
    return tuple(range(first, first + p.tcb_pages))


def _user(p: Params, t: ThreadId) -> Pages:
    if t.task == KERNEL_TASK or not (p.utcb_pages or p.kip_pages):
        return ()
    first = UTCB_BASE_PAGE + t.lthread * p.utcb_pages
    pages = (*range(first, first + p.utcb_pages), *range(KIP_PAGE, KIP_PAGE + p.kip_pages))
    return ((t.task, pages),)


def _path(p: Params) -> tuple[int, ...]:
    return tuple(range(KERNEL_IPC_BASE_PAGE, KERNEL_IPC_BASE_PAGE + p.ipc_pages))


def ipc_entry_pages(p: Params, src: ThreadId, dst: ThreadId | None) -> Pages:
    """What the IPC path touches in the sender's space, before any switch: its code and
    data, the sender's control block (and the receiver's, ``dst``, whose state it checks
    and whose registers it fills), then the sender's UTCB and the KIP."""
    kernel = _path(p) + _tcb(p, src) + (_tcb(p, dst) if dst is not None else ())
    return ((KERNEL_TASK, kernel), *_user(p, src)) if kernel else _user(p, src)


def ipc_exit_pages(p: Params, dst: ThreadId) -> Pages:
    """What the IPC path touches in the receiver's space, after the switch into it: its
    code and data, the receiver's control block and kernel stack (the switch resumes the
    receiver on its own stack), then the receiver's UTCB and the KIP."""
    kernel = _path(p) + _tcb(p, dst)
    return ((KERNEL_TASK, kernel), *_user(p, dst)) if kernel else _user(p, dst)


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


_NOBODY: Final[list[_Region]] = []
"""The holders of an empty cache set's line (never appended to)."""


class _Region:
    """A working set as the engine touches it: the TLB and cache keys, precomputed.

    ``tlb`` holds ``(set, key)`` per page; ``cache`` holds ``(set, key, holders)`` per
    cache line (every page's lines, in the order the model looks them up), ``holders``
    being the regions that contain that line.  ``unsettled`` counts the region's distinct
    cache lines that are not the most recently used line of their set: at zero, touching
    the region again hits every line without changing the cache, so the engine skips its
    cache lookups (two-way caches only, where it is maintained).
    """

    __slots__ = ("after", "cache", "tlb", "unsettled")

    def __init__(
        self,
        tlb: tuple[tuple[int, int], ...],
        cache: tuple[tuple[int, int, list[_Region]], ...],
    ) -> None:
        self.tlb = tlb
        self.cache = cache
        self.unsettled = 1
        self.after: dict[int, tuple[int, int]] = {}
        """TLB node -> (the node touching this region there leads to, its TLB misses)."""


_DIRECT: Final = 0
"""The TLB node that stands for 'the real sets, whatever they hold' (nothing recorded)."""


class _TlbSlices:
    """The TLB as an automaton over the slices between flushes, built as it is used.

    Right after a flush the TLB holds its sticky entries only, so its state is known from
    those (a *root*) plus the regions touched since (a path from the root): a node of a
    trie.  Touching region R at node n always leads to the same node with the same
    misses, so each transition is simulated once, recorded in ``R.after`` and from then
    on looked up; a flush at a node likewise (``flush_to``).  A fork trace goes through
    a few dozen nodes thousands of times.  The real sets are updated only to simulate a
    new transition, after replaying the node's path from its root if they are elsewhere.
    Beyond ``MAX_DEPTH`` touches without a flush (a tagged TLB, small spaces) nothing is
    recorded: the node is ``_DIRECT`` (the real sets) until the next flush.
    """

    MAX_DEPTH: ClassVar[int] = 64

    def __init__(self, nsets: int, ways: int) -> None:
        self.sets: list[list[int]] = [[] for _ in range(nsets)]
        self.sticky = [0] * nsets
        """Sticky entries per set."""
        self.used: set[int] = set()
        """The sets that hold entries."""
        self.ways = ways
        # per node, indexed by node number (0 is _DIRECT)
        self.parent = [_DIRECT]
        self.step: list[_Region | None] = [None]
        """The region whose touch led to the node (None for roots)."""
        self.depth = [0]
        self.flush_to = [_DIRECT]
        """The root a flush at the node leads to (``_DIRECT``: not known yet)."""
        self.snapshot: list[tuple[tuple[int, tuple[int, ...]], ...]] = [()]
        """A root's sticky entries: (set, entries oldest first) for every non-empty set."""
        self.roots: dict[tuple[tuple[int, tuple[int, ...]], ...], int] = {}
        self.at = self._root(())
        """The node the real sets are in (first: the empty TLB)."""
        self.start = self.at

    def _new(
        self,
        parent: int,
        step: _Region | None,
        depth: int,
        snapshot: tuple[tuple[int, tuple[int, ...]], ...],
    ) -> int:
        self.parent.append(parent)
        self.step.append(step)
        self.depth.append(depth)
        self.flush_to.append(_DIRECT)
        self.snapshot.append(snapshot)
        return len(self.parent) - 1

    def _root(self, snapshot: tuple[tuple[int, tuple[int, ...]], ...]) -> int:
        node = self.roots.get(snapshot)
        if node is None:
            node = self.roots[snapshot] = self._new(_DIRECT, None, 0, snapshot)
        return node

    def touch(self, node: int, reg: _Region) -> tuple[int, int]:
        """Touch ``reg`` at ``node`` (not recorded yet): (the next node, the misses)."""
        if node != self.at:
            self._replay(node)
        misses = self._apply(reg)
        if node == _DIRECT or self.depth[node] >= self.MAX_DEPTH:
            self.at = _DIRECT
            return _DIRECT, misses
        hit = (self._new(node, reg, self.depth[node] + 1, ()), misses)
        reg.after[node] = hit
        self.at = hit[0]
        return hit

    def flush(self, node: int) -> int:
        """Flush at ``node`` (not recorded yet): drop every entry that is not sticky."""
        if node != self.at:
            self._replay(node)
        sets, sticky, used = self.sets, self.sticky, self.used
        for s in tuple(used):
            if not sticky[s]:
                sets[s] = []
                used.discard(s)
            elif len(sets[s]) != sticky[s]:
                sets[s] = [k for k in sets[s] if k & 1]
        root = self._root(tuple((s, tuple(sets[s])) for s in sorted(used)))
        if node != _DIRECT:
            self.flush_to[node] = root
        self.at = root
        return root

    def _replay(self, node: int) -> None:
        """Bring the real sets to ``node``: its root's entries, then its path."""
        assert node != _DIRECT, "the direct node is always where the real sets are"
        self.at = target = node
        path = []
        while (step := self.step[node]) is not None:
            path.append(step)
            node = self.parent[node]
        sets, sticky, used = self.sets, self.sticky, self.used
        for s in used:
            sets[s] = []
            sticky[s] = 0
        used.clear()
        for s, entries in self.snapshot[node]:
            sets[s] = list(entries)
            sticky[s] = len(entries)
            used.add(s)
        for reg in reversed(path):
            self._apply(reg)
        assert self.at == target

    def _apply(self, reg: _Region) -> int:
        """Look every page of ``reg`` up in the real sets (LRU); returns the misses."""
        sets, sticky, used, ways_max = self.sets, self.sticky, self.used, self.ways
        misses = 0
        for s, k in reg.tlb:
            ways = sets[s]
            if k in ways:
                if ways[-1] != k:
                    ways.remove(k)
                    ways.append(k)
                continue
            misses += 1
            if len(ways) >= ways_max and ways.pop(0) & 1:
                sticky[s] -= 1
            ways.append(k)
            used.add(s)
            if k & 1:
                sticky[s] += 1
        return misses


class _Engine:
    """One pricing run (private: ``price_each`` is the interface).

    It computes exactly what the plain model of the module docstring describes (the tests
    check it against that model written plainly, ``tests/machine_reference.py``), but
    fast, because a run may be priced on many profiles:

    - each working set (task, pages) becomes a ``_Region`` once per run, with every page's
      TLB key and set and every cache line's key and set computed up front;
    - TLB and cache keys are ints; a TLB key's lowest bit says whether it is sticky;
    - the TLB is an automaton over the slices between flushes (``_TlbSlices``): touching
      a region is one dict lookup once that step has been simulated;
    - a two-way cache set is two lists (most and least recently used line), and a region
      whose lines are all most recently used skips its lookups (``_Region.unsettled``);
    - the event loop keeps its state in local variables and counts events instead of
      adding cycles per category; the categories are multiplied out at the end.
    """

    def __init__(self, prm: Params, apps: frozenset[int], start: int) -> None:
        tnsets = _tlb_sets(prm.tlb_entries, prm.tlb_ways)
        cnsets, self.lpp, self.colours = _cache_geometry(
            prm.cache_bytes, prm.cache_ways, prm.line_bytes, prm.page_bytes
        )
        self.p = prm
        self.apps = apps
        self.cur = start
        self.tlb = _TlbSlices(tnsets, prm.tlb_ways)
        self.node = self.tlb.start
        """Where the TLB is (a node of ``self.tlb``)."""
        self.tnsets = tnsets
        self.cnsets = cnsets
        self.two_way = prm.cache_ways == 2
        self.cmru = [-1] * cnsets
        self.clru = [-1] * cnsets
        self.csets: list[list[int]] = [] if self.two_way else [[] for _ in range(cnsets)]
        self.holders: dict[int, list[_Region]] = {}
        """Cache key -> the regions that contain it."""
        self.cowners: list[list[_Region]] = [_NOBODY] * cnsets
        """Per two-way cache set: the holders of its most recently used line."""
        self.regions: dict[tuple[int, tuple[int, ...]], _Region] = {}
        self.tkeys: dict[tuple[int, int], int] = {}
        # what ticks cost and did (all of it in category ``timer``)
        self.timer_cycles = 0
        self.tlb_misses = 0
        self.cache_misses = 0
        self.switches = 0
        self.flushes = 0
        self.ticks = 0
        self.other_runs = 0

    # -- regions --

    def _colour(self, task: int, h: int) -> int:
        colours = self.colours
        if self.p.coloring and colours >= 2:
            half = colours // 2
            return half + h % (colours - half) if task in self.apps else h % half
        return h % colours

    def region(self, task: int, pages: tuple[int, ...]) -> _Region:
        """The region of ``pages`` of ``task`` (built on first use)."""
        got = self.regions.get((task, pages))
        if got is not None:
            return got
        p = self.p
        sticky = (task == KERNEL_TASK and p.global_kernel) or (p.small_spaces and task in self.apps)
        tkeys, tnsets, cnsets, lpp = self.tkeys, self.tnsets, self.cnsets, self.lpp
        holders = self.holders
        tlb: list[tuple[int, int]] = []
        cache: list[tuple[int, int, list[_Region]]] = []
        for page in pages:
            ident = tkeys.setdefault((task, page), len(tkeys))
            tlb.append((page % tnsets, ident * 2 + sticky))
            h = _mix(task, page)
            colour = self._colour(task, h)
            frame = (h >> 16) * self.colours + colour
            first = _mix(frame, 7) % lpp
            for i in range(p.lines_per_touch):
                line = (first + i) % lpp
                key = frame * lpp + line
                held = holders.get(key)
                if held is None:
                    held = holders[key] = []
                cache.append(((colour * lpp + line) % cnsets, key, held))
        reg = _Region(tuple(tlb), tuple(cache))
        distinct = {k: (s, held) for s, k, held in cache}
        cmru = self.cmru
        reg.unsettled = sum(1 for k, (s, _) in distinct.items() if cmru[s] != k)
        for _, held in distinct.values():
            held.append(reg)
        self.regions[(task, pages)] = reg
        return reg

    # -- the slow paths (timer ticks, caches that are not two-way) --

    def _tlb(self, reg: _Region) -> int:
        """Look every page of ``reg`` up in the TLB; returns the misses."""
        hit = reg.after.get(self.node)
        if hit is None:
            hit = self.tlb.touch(self.node, reg)
        self.node, misses = hit
        return misses

    def _cache(self, reg: _Region) -> int:
        """Look every line of ``reg`` up in the cache; returns the misses."""
        misses = 0
        if self.two_way:
            if not reg.unsettled:
                return 0
            cmru, clru, cowners = self.cmru, self.clru, self.cowners
            for s, k, held in reg.cache:
                m = cmru[s]
                if m != k:
                    if clru[s] != k:
                        misses += 1
                    clru[s] = m
                    cmru[s] = k
                    for r in cowners[s]:
                        r.unsettled += 1
                    cowners[s] = held
                    for r in held:
                        r.unsettled -= 1
            return misses
        csets, ways_max = self.csets, self.p.cache_ways
        for s, k, _ in reg.cache:
            ways = csets[s]
            if k in ways:
                if ways[-1] != k:
                    ways.remove(k)
                    ways.append(k)
                continue
            misses += 1
            if len(ways) >= ways_max:
                del ways[0]
            ways.append(k)
        return misses

    def _switch(self, src: int, dst: int) -> int:
        """Switch address spaces (no-op if ``src == dst``); returns the cycles."""
        if src == dst:
            return 0
        p = self.p
        self.switches += 1
        if p.small_spaces and (src in self.apps or dst in self.apps):
            return p.small_switch
        if not p.tagged:
            self.flushes += 1
            self.node = self.tlb.flush_to[self.node] or self.tlb.flush(self.node)
        return p.cr3

    def _ticks(self, now: int, next_tick: int, cur: int) -> tuple[int, int]:
        """Every timer interrupt due at ``now``; returns the new ``now`` and next tick."""
        p = self.p
        timer_region = self.region(
            KERNEL_TASK,
            tuple(range(KERNEL_TIMER_BASE_PAGE, KERNEL_TIMER_BASE_PAGE + p.timer_pages)),
        )
        while now >= next_tick:
            next_tick += p.tick_period
            self.ticks += 1
            spent = p.tick + self._touch(timer_region)
            if p.switch_every and self.ticks % p.switch_every == 0:
                self.other_runs += 1
                other = self.region(
                    OTHER_TASK, tuple(range(OTHER_BASE_PAGE, OTHER_BASE_PAGE + p.other_pages))
                )
                spent += self._switch(cur, OTHER_TASK) + p.other_cycles
                spent += self._touch(other) + self._switch(OTHER_TASK, cur)
            self.timer_cycles += spent
            now += spent
        return now, next_tick

    def _touch(self, reg: _Region) -> int:
        tlb, cache = self._tlb(reg), self._cache(reg)
        self.tlb_misses += tlb
        self.cache_misses += cache
        return tlb * self.p.tlb_miss + cache * self.p.cache_miss

    # -- the event loop --

    def kernel_regions(self, pages: Pages) -> tuple[_Region, ...]:
        """The regions of an IPC side's (task, pages) pairs."""
        region_of = self.region
        return tuple(region_of(task, pg) for task, pg in pages)

    def run(self, events: tuple[Event, ...], per_event: bool) -> tuple[Cost, tuple[int, ...]]:
        """Price ``events`` in order; the cost and (if ``per_event``) each event's cycles."""
        p = self.p
        work: dict[str, list[int]] = {}
        """Work unit -> [cycles, how many times it was done]."""
        for unit, unit_cycles in p.work:
            work[unit] = [unit_cycles, 0]
        region_of, regions = self.region, self.regions
        entry_cache: dict[tuple[ThreadId, ThreadId | None], tuple[_Region, ...]] = {}
        exit_cache: dict[ThreadId, tuple[_Region, ...]] = {}
        ipc_cycles, trap = p.trap + p.ipc_path, p.trap
        tlb_miss, cache_miss = p.tlb_miss, p.cache_miss
        small = self.apps if p.small_spaces else frozenset()
        small_cycles, cr3_cycles, flushing = p.small_switch, p.cr3, not p.tagged
        tlb_touch, tlb_flush, flush_to = self.tlb.touch, self.tlb.flush, self.tlb.flush_to
        cmru, clru, cowners, two_way = self.cmru, self.clru, self.cowners, self.two_way
        cache_slow = self._cache
        cur, node, now, next_tick = self.cur, self.node, 0, p.tick_period
        n_ipc = n_sys = n_tlb = n_cache = n_small = n_cr3 = n_switch = n_flush = n_sched = 0
        totals: list[int] = []
        mark = totals.append
        todo: tuple[_Region, ...]
        none: tuple[_Region, ...] = ()
        pending: tuple[_Region, ...] = none
        """The exit side of the last IPC, touched once the CPU is in ``pending_task``."""
        pending_task = -2
        kernel = KERNEL_TASK
        touch_, switch_, work_, call_, fail_, reply_, syscall_ = (
            Touch,
            SpaceSwitch,
            Work,
            IpcCall,
            IpcFail,
            IpcReply,
            Syscall,
        )
        e: Any  # one of the event classes: the chain below tells which
        task: int
        for e in events:
            kind = type(e)
            receiver: ThreadId | None = None
            if kind is touch_:
                task = e.task
                reg = regions.get((task, e.pages))
                todo = (reg if reg is not None else region_of(task, e.pages),)
            elif kind is switch_:
                task = e.dst
                if task != cur:
                    n_switch += 1
                    if cur in small or task in small:
                        n_small += 1
                        now += small_cycles
                    else:
                        n_cr3 += 1
                        now += cr3_cycles
                        if flushing:
                            n_flush += 1
                            node = flush_to[node] or tlb_flush(node)
                    cur = task
                if pending_task == cur:
                    todo, pending, pending_task = pending, none, -2
                else:
                    todo = none
            elif kind is work_:
                task = e.task
                done = work.get(e.unit)
                if done is None:
                    raise PricingError(f"the profile has no cost for work unit {e.unit!r}")
                now += done[0]
                done[1] += 1
                todo = none
            elif kind is call_ or kind is fail_ or kind is reply_:
                src = e.src
                task = kernel if kind is reply_ else src.task
                n_ipc += 1
                now += ipc_cycles
                receiver = None if kind is fail_ else e.dst
                got = entry_cache.get((src, receiver))
                if got is None:
                    got = entry_cache[(src, receiver)] = self.kernel_regions(
                        ipc_entry_pages(p, src, receiver)
                    )
                todo = got
                if receiver is None:
                    receiver = src
                pending, pending_task = none, -2
            elif kind is syscall_:
                task = e.caller.task
                n_sys += 1
                now += trap
                todo = none
            else:
                raise AssertionError(f"unknown trace event {kind.__name__}")
            if task != cur and task != kernel:
                # the CPU must be in the task's space to run its code: the scheduler switches
                n_sched += 1
                n_switch += 1
                if cur in small or task in small:
                    n_small += 1
                    now += small_cycles
                else:
                    n_cr3 += 1
                    now += cr3_cycles
                    if flushing:
                        n_flush += 1
                        node = flush_to[node] or tlb_flush(node)
                cur = task
                if pending_task == cur:
                    todo, pending, pending_task = pending + todo, none, -2
            if receiver is not None:
                back = exit_cache.get(receiver)
                if back is None:
                    back = exit_cache[receiver] = self.kernel_regions(ipc_exit_pages(p, receiver))
                if receiver.task == cur or receiver.task == kernel:
                    todo = todo + back
                else:
                    pending, pending_task = back, receiver.task
            for reg in todo:
                hit = reg.after.get(node)
                if hit is None:
                    hit = tlb_touch(node, reg)
                node, missed = hit
                if missed:
                    n_tlb += missed
                    now += missed * tlb_miss
                if not two_way:
                    missed = cache_slow(reg)
                    n_cache += missed
                    now += missed * cache_miss
                elif reg.unsettled:
                    for s, k, held in reg.cache:
                        m = cmru[s]
                        if m != k:
                            if clru[s] != k:
                                n_cache += 1
                                now += cache_miss
                            clru[s] = m
                            cmru[s] = k
                            for r in cowners[s]:
                                r.unsettled += 1
                            cowners[s] = held
                            for r in held:
                                r.unsettled -= 1
            if now >= next_tick:
                self.node = node
                now, next_tick = self._ticks(now, next_tick, cur)
                node = self.node
            if per_event:
                mark(now)
        self.switches += n_switch
        self.flushes += n_flush
        self.tlb_misses += n_tlb
        self.cache_misses += n_cache
        cycles: Counter[str] = Counter()
        cycles["trap"] = (n_ipc + n_sys) * trap
        cycles["ipc"] = n_ipc * p.ipc_path
        cycles["tlb"] = n_tlb * tlb_miss
        cycles["cache"] = n_cache * cache_miss
        cycles["switch"] = n_small * small_cycles + n_cr3 * cr3_cycles
        cycles["timer"] = self.timer_cycles
        for unit, (unit_cycles, times) in work.items():
            cycles["work." + unit.split(".", 1)[0]] += unit_cycles * times
        counts = Counter({kind.__name__: n for kind, n in Counter(map(type, events)).items()})
        for name, value in (
            ("switches", self.switches),
            ("flushes", self.flushes),
            ("sched_switches", n_sched),
            ("ticks", self.ticks),
            ("other_runs", self.other_runs),
        ):
            if value:
                counts[name] = value
        cost = Cost(
            cycles=sum(cycles.values()),
            tlb_misses=self.tlb_misses,
            cache_misses=self.cache_misses,
            breakdown=tuple(sorted((k, v) for k, v in cycles.items() if v)),
            counts=tuple(sorted(counts.items())),
        )
        each = tuple(map(operator.sub, totals, [0, *totals[:-1]])) if per_event else ()
        assert now == cost.cycles, "the cycles by category must add up to the total"
        return cost, each


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
    return _price(trace, profile, apps, per_event=False)[0]


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
    cost, each = _price(trace, profile, apps, per_event=True)
    assert sum(each) == cost.cycles, "per-event cycles must add up to the total"
    return cost, each


def _price(
    trace: Iterable[Event],
    profile: Profile | Params,
    apps: frozenset[int] | None,
    *,
    per_event: bool,
) -> tuple[Cost, tuple[int, ...]]:
    events = tuple(trace)
    prm = profile if isinstance(profile, Params) else Params.of(profile)
    if apps is None:
        # Only colouring and small spaces tell applications apart: skip the scan otherwise.
        apps = linux_apps(events) if prm.coloring or prm.small_spaces else frozenset()
    return _Engine(prm, apps, _first_task(events)).run(events, per_event)
