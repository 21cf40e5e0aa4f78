"""The fast pricing engine: ``scenarios.cost.plain``'s model, computed quickly.

It prices exactly as the plain model (``scenarios.cost.plain``, the spec) does, cycle for
cycle (``tests/test_machine_engine.py`` checks it), because a run may be priced on many
profiles.  Each rule is written once here too: the address-space switch in ``_switch``,
TLB and cache lookups in ``_touch``, the timer in ``_ticks``; ``run`` dispatches the
events.  What makes it fast:

- each working set (task, pages) becomes a ``Region`` once per run, with every page's
  TLB key and set and every cache line's key and set computed up front;
- TLB and cache keys are ints; a TLB key's lowest bit says whether it is sticky;
- the TLB is an automaton over the slices between flushes (``scenarios.cost.slices``):
  touching a region is one dict lookup once that step has been simulated;
- a two-way cache set is two lists (most and least recently used line), and a region
  whose lines are all most recently used skips its lookups (``Region.unsettled``);
- the event loop counts events instead of adding cycles per category; the categories
  are multiplied out at the end.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Any

from protocols.ids import KERNEL_TASK, ThreadId
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work
from scenarios.cost import layout
from scenarios.cost.layout import OTHER_TASK, Pages
from scenarios.cost.plain import Cost, PricingError, cache_geometry, sticky, tlb_sets
from scenarios.cost.schema import Sections
from scenarios.cost.slices import NOBODY, Region, TlbSlices

__all__ = ["Engine"]


class Engine:
    """One pricing run: ``Engine(sections, apps, start).run(events, per_event)``."""

    def __init__(self, s: Sections, apps: frozenset[int], start: int) -> None:
        tnsets = tlb_sets(s.tlb.entries.value, s.tlb.ways.value)
        cnsets, self.lpp, self.colours = cache_geometry(
            s.cache.size_kb.value * 1024,
            s.cache.ways.value,
            s.cache.line_bytes.value,
            s.cache.page_bytes.value,
        )
        self.s = s
        self.apps = apps
        self.small = apps if s.small_spaces.value else frozenset()
        """The tasks a switch into or out of is a small-space switch."""
        self.small_cycles = s.switch.small_cycles.value
        self.cr3_cycles = s.switch.cr3_cycles.value
        self.flushing = not s.tlb.tagged.value
        """Whether a CR3 reload flushes the TLB (an untagged one)."""
        self.cur = start
        self.tlb = TlbSlices(tnsets, s.tlb.ways.value)
        self.node = self.tlb.start
        """Where the TLB is (a node of ``self.tlb``)."""
        self.tnsets = tnsets
        self.cnsets = cnsets
        self.cache_ways = s.cache.ways.value
        self.two_way = self.cache_ways == 2
        self.cmru = [-1] * cnsets
        self.clru = [-1] * cnsets
        self.csets: list[list[int]] = [] if self.two_way else [[] for _ in range(cnsets)]
        self.holders: dict[int, list[Region]] = {}
        """Cache key -> the regions that contain it."""
        self.cowners: list[list[Region]] = [NOBODY] * cnsets
        """Per two-way cache set: the holders of its most recently used line."""
        self.regions: dict[tuple[int, tuple[int, ...]], Region] = {}
        self.tkeys: dict[tuple[int, int], int] = {}
        self.tlb_miss = s.tlb.miss_cycles.value
        self.cache_miss = s.cache.miss_cycles.value
        self.tlb_misses = 0
        self.cache_misses = 0
        self.timer_cycles = 0
        """Everything the ticks cost (category ``timer``), their misses included."""
        self.timer_tlb_misses = 0
        self.timer_cache_misses = 0
        self.switches = 0
        self.flushes = 0
        self.ticks = 0
        self.other_runs = 0

    # -- regions --

    def region(self, task: int, pages: tuple[int, ...]) -> Region:
        """The region of ``pages`` of ``task`` (built on first use)."""
        got = self.regions.get((task, pages))
        if got is not None:
            return got
        s = self.s
        keep = sticky(task, s, self.apps)
        group = (task in self.apps) if s.cache.coloring.value else None
        count = s.cache.lines_per_touch.value
        tkeys, tnsets, cnsets, lpp = self.tkeys, self.tnsets, self.cnsets, self.lpp
        holders = self.holders
        tlb: list[tuple[int, int]] = []
        cache: list[tuple[int, int, list[Region]]] = []
        for page in pages:
            ident = tkeys.setdefault((task, page), len(tkeys))
            tlb.append((page % tnsets, ident * 2 + keep))
            colour, frame = layout.frame(task, page, self.colours, group)
            for line in layout.lines(frame, lpp, count):
                key = frame * lpp + line
                held = holders.get(key)
                if held is None:
                    held = holders[key] = []
                cache.append(((colour * lpp + line) % cnsets, key, held))
        reg = Region(tuple(tlb), tuple(cache))
        distinct = {k: (st, held) for st, k, held in cache}
        cmru = self.cmru
        reg.unsettled = sum(1 for k, (st, _) in distinct.items() if cmru[st] != k)
        for _, held in distinct.values():
            held.append(reg)
        self.regions[(task, pages)] = reg
        return reg

    def regions_of(self, pages: Pages) -> tuple[Region, ...]:
        """The regions of an IPC side's (task, pages) pairs."""
        return tuple(self.region(task, pg) for task, pg in pages)

    # -- the rules --

    def _touch(self, regs: tuple[Region, ...]) -> int:
        """Every page of ``regs`` through the TLB, every line through the cache (LRU):
        the TLB and cache misses are counted here; returns the cycles they cost."""
        node = self.node
        tlb_misses = cache_misses = 0
        for reg in regs:
            hit = reg.after.get(node)
            if hit is None:
                hit = self.tlb.touch(node, reg)
            node, missed = hit
            tlb_misses += missed
            if reg.unsettled:  # else every line is its set's most recent: all hit
                cache_misses += self._cache(reg)
        self.node = node
        if not (tlb_misses or cache_misses):
            return 0
        self.tlb_misses += tlb_misses
        self.cache_misses += cache_misses
        return tlb_misses * self.tlb_miss + cache_misses * self.cache_miss

    def _cache(self, reg: Region) -> int:
        """Every line of ``reg`` through the cache; returns the misses."""
        misses = 0
        if self.two_way:
            cmru, clru, cowners = self.cmru, self.clru, self.cowners
            for st, k, held in reg.cache:
                m = cmru[st]
                if m != k:
                    if clru[st] != k:
                        misses += 1
                    clru[st] = m
                    cmru[st] = k
                    for r in cowners[st]:
                        r.unsettled += 1
                    cowners[st] = held
                    for r in held:
                        r.unsettled -= 1
            return misses
        csets, ways_max = self.csets, self.cache_ways
        for st, k, _ in reg.cache:
            ways = csets[st]
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
        """Switch address spaces (``src != dst``); returns the cycles."""
        self.switches += 1
        if src in self.small or dst in self.small:
            return self.small_cycles
        if self.flushing:
            self.flushes += 1
            self.node = self.tlb.flush_to[self.node] or self.tlb.flush(self.node)
        return self.cr3_cycles

    def _ticks(self, now: int, next_tick: int, period: int) -> tuple[int, int]:
        """Every timer interrupt due at ``now``; returns the new ``now`` and next tick."""
        s = self.s
        every = s.timer.switch_every.value
        handler = (self.region(KERNEL_TASK, layout.timer_pages(s)),)
        tlb_before, cache_before = self.tlb_misses, self.cache_misses
        while now >= next_tick:
            next_tick += period
            self.ticks += 1
            spent = s.timer.tick_cycles.value + self._touch(handler)
            if every and self.ticks % every == 0:
                self.other_runs += 1
                other = (self.region(OTHER_TASK, layout.other_pages(s)),)
                spent += self._switch(self.cur, OTHER_TASK) + s.timer.other_cycles.value
                spent += self._touch(other) + self._switch(OTHER_TASK, self.cur)
            self.timer_cycles += spent
            now += spent
        self.timer_tlb_misses += self.tlb_misses - tlb_before
        self.timer_cache_misses += self.cache_misses - cache_before
        return now, next_tick

    # -- the event loop --

    def run(self, events: tuple[Event, ...], per_event: bool) -> tuple[Cost, tuple[int, ...]]:
        """Price ``events`` in order; the cost and (if ``per_event``) each event's cycles."""
        s = self.s
        work = {unit: [c.value, 0] for unit, c in sorted(s.work.items())}
        """Work unit -> [cycles, how many times it was done]."""
        region_of, regions_of, regions = self.region, self.regions_of, self.regions
        touch, switch, cur = self._touch, self._switch, self.cur
        entry_cache: dict[tuple[ThreadId, ThreadId | None], tuple[Region, ...]] = {}
        exit_cache: dict[ThreadId, tuple[Region, ...]] = {}
        trap, path = s.cpu.trap_cycles.value, s.ipc.path_cycles.value
        period = s.cpu.mhz.value * 1_000_000 // s.timer.hz.value
        now, next_tick = 0, period
        n_ipc = n_sys = n_sched = switch_cycles = 0
        totals: list[int] = []
        todo: tuple[Region, ...]
        none: tuple[Region, ...] = ()
        pending: tuple[Region, ...] = none
        """The exit side of the last IPC, touched once the CPU is in ``pending_task``."""
        pending_task = -2
        kernel = KERNEL_TASK
        e: Any  # one of the event classes: the chain below tells which
        for e in events:
            kind = type(e)
            receiver: ThreadId | None = None
            dst = cur  # the space the event runs in: a switch, or the scheduler's, goes there
            if kind is Touch:
                task = e.task
                reg = regions.get((task, e.pages))
                todo = (reg if reg is not None else region_of(task, e.pages),)
            elif kind is SpaceSwitch:
                dst = e.dst
                todo = none
            elif kind is Work:
                task = e.task
                done = work.get(e.unit)
                if done is None:
                    raise PricingError(f"the profile has no cost for work unit {e.unit!r}")
                now += done[0]
                done[1] += 1
                todo = none
            elif kind is IpcCall or kind is IpcFail or kind is IpcReply:
                src = e.src
                task = kernel if kind is IpcReply else src.task
                n_ipc += 1
                now += trap + path
                receiver = None if kind is IpcFail else e.dst
                got = entry_cache.get((src, receiver))
                if got is None:
                    pages = layout.ipc_entry_pages(s, src, receiver)
                    got = entry_cache[(src, receiver)] = regions_of(pages)
                todo = got
                if receiver is None:
                    receiver = src
                pending, pending_task = none, -2
            elif kind is Syscall:
                task = e.caller.task
                n_sys += 1
                now += trap
                todo = none
            else:
                raise AssertionError(f"unknown trace event {kind.__name__}")
            if kind is not SpaceSwitch and task != kernel:
                dst = task  # the CPU must be in the task's space to run its code
            if dst != cur:
                if kind is not SpaceSwitch:
                    n_sched += 1
                spent = switch(cur, dst)
                switch_cycles += spent
                now += spent
                self.cur = cur = dst
                if pending_task == dst:
                    todo, pending, pending_task = pending + todo, none, -2
            if receiver is not None:
                back = exit_cache.get(receiver)
                if back is None:
                    back = exit_cache[receiver] = regions_of(layout.ipc_exit_pages(s, receiver))
                if receiver.task == cur or receiver.task == kernel:
                    todo = todo + back
                else:
                    pending, pending_task = back, receiver.task
            if todo:
                now += touch(todo)
            if now >= next_tick:
                now, next_tick = self._ticks(now, next_tick, period)
            if per_event:
                totals.append(now)
        cycles: Counter[str] = Counter()
        cycles["trap"] = (n_ipc + n_sys) * trap
        cycles["ipc"] = n_ipc * path
        cycles["tlb"] = (self.tlb_misses - self.timer_tlb_misses) * self.tlb_miss
        cycles["cache"] = (self.cache_misses - self.timer_cache_misses) * self.cache_miss
        cycles["switch"] = switch_cycles
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
