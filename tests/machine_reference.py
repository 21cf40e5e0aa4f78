"""The first, plain pricing engine, kept as the reference the fast one must match.

``scenarios.cost.machine`` prices traces with an engine tuned for speed (precomputed regions,
integer keys, state in local variables).  This is the engine it replaced, written for
clarity: one method per event kind on ``Tlb`` and ``Cache`` objects.  The tests price the
same traces with both and require identical results (``tests/test_machine_engine.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from protocols.ids import KERNEL_TASK, ThreadId
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work
from scenarios.cost.machine import (
    KERNEL_TIMER_BASE_PAGE,
    OTHER_BASE_PAGE,
    OTHER_TASK,
    Cache,
    Cost,
    Params,
    PricingError,
    Tlb,
    _first_task,
    _mix,
    ipc_entry_pages,
    ipc_exit_pages,
    linux_apps,
)
from scenarios.cost.profile import Profile


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
        self.pending: ThreadId | None = None
        """The receiver of the last IPC while its exit side waits for a switch into it."""

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
        if self.override is None and self.pending is not None and self.pending.task == dst:
            self.ipc_exit()

    # -- events --

    def ipc(self, src: ThreadId, dst: ThreadId | None) -> None:
        """The IPC path: entry side in the sender's space; the exit side in the space of
        the receiver (``dst``, or the sender after a failure) at once or after the switch."""
        self.charge("trap", self.p.trap)
        self.charge("ipc", self.p.ipc_path)
        self.pending = None
        for task, pages in ipc_entry_pages(self.p, src, dst):
            self.touch(task, pages)
        self.pending = src if dst is None else dst
        if self.pending.task in (self.cur, KERNEL_TASK):
            self.ipc_exit()

    def ipc_exit(self) -> None:
        assert self.pending is not None
        receiver, self.pending = self.pending, None
        for task, pages in ipc_exit_pages(self.p, receiver):
            self.touch(task, pages)

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
            self.pending = None
            self.run(e.src.task)
            self.ipc(e.src, e.dst if kind is IpcCall else None)
        elif kind is IpcReply:
            assert isinstance(e, IpcReply)
            self.ipc(e.src, e.dst)
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


def reference_price_each(
    trace: Iterable[Event],
    profile: Profile | Params,
    *,
    apps: frozenset[int] | None = None,
) -> tuple[Cost, tuple[int, ...]]:
    """``scenarios.cost.machine.price_each`` as the reference engine computes it."""
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
