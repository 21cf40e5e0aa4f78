"""The machine model on small hand-made traces whose misses can be counted by hand."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from protocols.ids import ThreadId
from protocols.linux import Getpid, GetpidReply
from protocols.trace import Event, IpcCall, IpcReply, SpaceSwitch, Syscall, Touch, Work
from scenarios.cost.layout import mix
from scenarios.cost.machine import Cache, PricingError, Tlb, linux_apps, price, price_each
from scenarios.cost.profile import Profile, load_profile

APP, SERVER, KERNEL = 5, 6, 0

QUIET = (
    "timer.hz=1",  # one tick per 800 M cycles: none in these short traces
    "cache.miss_cycles=0",
    "tlb.miss_cycles=1",
    "ipc.kernel_pages=0",  # the kernel's IPC path is tested on its own
    "ipc.tcb_pages=0",
)


def profile(*overrides: str) -> Profile:
    return load_profile("duron800", (*QUIET, *overrides))


def touch(task: int, *pages: int) -> Touch:
    return Touch(seq=0, task=task, region="r", pages=pages)


def switch(src: int, dst: int) -> SpaceSwitch:
    return SpaceSwitch(seq=0, src=src, dst=dst)


def round_trip(app_pages: Sequence[int], server_pages: Sequence[int]) -> list[Event]:
    """One L4Linux-style system call: app -> server -> app, each side touching pages."""
    a, s = ThreadId(APP), ThreadId(SERVER)
    return [
        touch(APP, *app_pages),
        IpcCall(seq=0, src=a, dst=s, message=Getpid()),
        switch(APP, SERVER),
        touch(SERVER, *server_pages),
        IpcReply(seq=0, src=s, dst=a, message=GetpidReply(pid=APP)),
        switch(SERVER, APP),
    ]


# -- the TLB on its own ----------------------------------------------------------------


def test_fully_associative_tlb_evicts_the_least_recently_used_entry() -> None:
    tlb = Tlb(entries=2, ways=2)
    hits = [tlb.access(5, p) for p in (1, 2, 1, 3, 2, 1)]
    # 1 miss, 2 miss, 1 hit (2 is now LRU), 3 miss evicts 2, 2 miss evicts 1, 1 miss
    assert hits == [False, False, True, False, False, False]


def test_set_associative_tlb_conflicts_only_within_a_set() -> None:
    tlb = Tlb(entries=4, ways=1)  # 4 sets, direct mapped: page % 4
    assert [tlb.access(5, p) for p in (0, 1, 4, 1, 0)] == [False, False, False, True, False]


def test_flush_keeps_sticky_entries_only() -> None:
    tlb = Tlb(entries=8, ways=8)
    tlb.access(0, 100, sticky=True)
    tlb.access(5, 1)
    tlb.access(5, 2)
    assert tlb.flush() == 2
    assert len(tlb) == 1
    assert tlb.access(0, 100) is True
    assert tlb.access(5, 1) is False


def test_same_page_of_two_tasks_is_two_entries() -> None:
    tlb = Tlb(entries=8, ways=8)
    assert tlb.access(5, 1) is False
    assert tlb.access(6, 1) is False
    assert tlb.access(5, 1) is True


# -- the cache on its own --------------------------------------------------------------


def test_cache_geometry_gives_colours() -> None:
    cache = Cache(size_bytes=64 * 1024, ways=2, line_bytes=64, page_bytes=4096)
    assert (cache.nsets, cache.lines_per_page, cache.colours) == (512, 64, 8)


def test_two_way_cache_holds_two_frames_of_a_colour_not_three() -> None:
    cache = Cache(size_bytes=256, ways=2, line_bytes=64, page_bytes=128)  # 2 sets, 1 colour
    seq = [(10, 0), (11, 0), (10, 0), (12, 0), (11, 0)]
    hits = [cache.access(0, frame, line) for frame, line in seq]
    # 10 miss, 11 miss, 10 hit, 12 miss evicts 11 (LRU), 11 miss
    assert hits == [False, False, True, False, False]
    assert cache.access(0, 10, 1) is False  # line 1 is in the other set


# -- pricing: TLB misses ---------------------------------------------------------------


def test_untagged_tlb_refills_both_sides_after_every_switch() -> None:
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 4
    cost = price(trace, profile())
    # 3 app + 3 server pages, all flushed by each of the 2 switches per round trip
    assert cost.tlb_misses == 4 * 6
    assert cost.count("flushes") == 8


def test_tagged_tlb_misses_only_the_first_time() -> None:
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 4
    assert price(trace, profile("tlb.tagged=true")).tlb_misses == 6


def test_small_spaces_keep_the_application_entries() -> None:
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 4
    cost = price(trace, profile("small_spaces=true"))
    # no switch flushes: the app is a small space, so only cold misses remain
    assert cost.tlb_misses == 6
    assert cost.count("flushes") == 0


def test_global_kernel_pages_survive_the_flush() -> None:
    trace = [touch(KERNEL, 50), touch(APP, 1), switch(APP, SERVER), touch(KERNEL, 50)]
    trace += [touch(SERVER, 7), switch(SERVER, APP), touch(KERNEL, 50), touch(APP, 1)]
    # kernel page once (global), app page twice (flushed in between), server page once
    assert price(trace, profile()).tlb_misses == 1 + 2 + 1
    # without global pages the kernel page is flushed by both switches too
    assert price(trace, profile("tlb.global_kernel=false")).tlb_misses == 3 + 2 + 1


def test_kernel_ipc_path_pages_are_priced_per_ipc() -> None:
    a, s = ThreadId(APP), ThreadId(SERVER)
    call = IpcCall(seq=0, src=a, dst=s, message=Getpid())
    cost = price([call, call, call], profile("ipc.kernel_pages=2"))
    assert cost.tlb_misses == 2  # global kernel pages: cold misses only
    p = profile("ipc.kernel_pages=2")
    assert cost.category("ipc") == 3 * p.get_int("ipc.path_cycles")
    assert cost.category("trap") == 3 * p.get_int("cpu.trap_cycles")


def test_tlb_miss_cycles_scale_the_tlb_category() -> None:
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 2
    cost = price(trace, profile("tlb.miss_cycles=100", "ipc.kernel_pages=0"))
    assert cost.tlb_misses == 12
    assert cost.category("tlb") == 1200


# -- pricing: cache and colouring ------------------------------------------------------


def colliding_pages() -> tuple[int, int]:
    """An app page and a server page whose frames have the same colour (of 2)."""
    for page in range(1, 1000):
        if mix(APP, 1) % 2 == mix(SERVER, page) % 2:
            return 1, page
    raise AssertionError("no collision found")


ONE_WAY_TWO_COLOURS = (
    "cache.size_kb=8",
    "cache.ways=1",
    "cache.line_bytes=4096",
    "cache.lines_per_touch=1",
    "cache.miss_cycles=1",
    "ipc.kernel_pages=0",
)


def test_colliding_frames_evict_each_other_without_colouring() -> None:
    app_page, server_page = colliding_pages()
    trace = round_trip((app_page,), (server_page,)) * 5
    assert price(trace, profile(*ONE_WAY_TWO_COLOURS)).cache_misses == 10


def test_colouring_separates_applications_from_servers() -> None:
    app_page, server_page = colliding_pages()
    trace = round_trip((app_page,), (server_page,)) * 5
    cost = price(trace, profile(*ONE_WAY_TWO_COLOURS, "cache.coloring=true"))
    assert cost.cache_misses == 2  # the two cold misses; then each keeps its colour


def test_the_cache_is_not_flushed_by_a_switch() -> None:
    trace = round_trip((1, 2), (7, 8)) * 3
    cost = price(trace, profile("cache.lines_per_touch=1", "ipc.kernel_pages=0"))
    assert cost.cache_misses == 4  # 64 KB holds 4 lines: only cold misses


def test_applications_are_the_senders_of_linux_requests() -> None:
    trace = [
        *round_trip((1,), (2,)),
        Syscall(seq=0, caller=ThreadId(9), request=Getpid(), reply=GetpidReply(pid=9)),
    ]
    assert linux_apps(trace) == frozenset({APP, 9})


# -- pricing: work, timer, determinism -------------------------------------------------


def test_work_is_priced_by_unit_and_categorised_by_prefix() -> None:
    trace = [Work(seq=0, task=SERVER, unit="linux.getpid")] * 3
    p = profile()
    cost = price(trace, p)
    assert cost.cycles == 3 * p.get_int("work.linux.getpid")
    assert cost.breakdown == (("work.linux", cost.cycles),)


def test_unknown_work_unit_is_a_pricing_error() -> None:
    with pytest.raises(PricingError, match=r"no cost for work unit 'linux\.nothing'"):
        price([Work(seq=0, task=SERVER, unit="linux.nothing")], profile())


def test_timer_ticks_at_hz_and_switches_every_nth_tick() -> None:
    # 1 MHz at 10 Hz: a tick every 100,000 cycles; wait.read set to 100,000
    p = profile(
        "cpu.mhz=1",
        "timer.hz=10",
        "work.wait.read=100000",
        "timer.switch_every=2",
        "timer.other_pages=5",
        "timer.kernel_pages=1",
        "tlb.miss_cycles=0",
        "timer.tick_cycles=0",
        "timer.other_cycles=0",
        "switch.cr3_cycles=0",
    )
    trace = [touch(APP, 1), *[Work(seq=0, task=APP, unit="wait.read")] * 4, touch(APP, 1)]
    cost = price(trace, p)
    assert cost.count("ticks") == 4
    assert cost.count("other_runs") == 2
    # app page cold, timer page cold, 2 x 5 other pages, app page after the last switch
    assert cost.tlb_misses == 1 + 1 + 10 + 1


def test_pricing_is_deterministic() -> None:
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 50
    p = profile("timer.hz=1000")
    assert price(trace, p) == price(trace, p)


def test_breakdown_sums_to_the_total() -> None:
    trace = [*round_trip((1, 2, 3), (7, 8, 9)), Work(seq=0, task=SERVER, unit="linux.getpid")]
    cost = price(trace, load_profile())
    assert sum(v for _, v in cost.breakdown) == cost.cycles


def test_code_of_another_task_runs_only_after_a_switch_to_it() -> None:
    # the trace never says the scheduler switched from app 5 to app 9: the model does
    trace = [touch(APP, 1), touch(9, 2), touch(APP, 1)]
    cost = price(trace, profile())
    assert cost.count("sched_switches") == 2
    assert cost.tlb_misses == 3  # the app's page is flushed by the two switches


# -- the kernel's IPC working set on both sides of the switch --------------------------

KERNEL_PATH = ("ipc.kernel_pages=2", "ipc.tcb_pages=1", "switch.cr3_cycles=0")
"""The IPC path's code and data, one control-block page per thread; a switch costs only
its refills (one cycle per TLB miss, QUIET), so a switch event's cycles are its misses."""


def test_an_untagged_tlb_without_global_pages_refills_the_kernel_after_each_switch() -> None:
    p = profile(*KERNEL_PATH, "tlb.global_kernel=false")
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 2
    cost, each = price_each(trace, p)
    trap_ipc = p.get_int("cpu.trap_cycles") + p.get_int("ipc.path_cycles")
    # first round trip, cold: app 3; call: code, data, both control blocks 4; after the
    # switch, in the server's space: code, data, the server's control block 3; server 3;
    # reply: the app's control block 1; after the switch back: code, data, app's block 3
    assert [each[0], each[1] - trap_ipc, each[2]] == [3, 4, 3]
    assert [each[3], each[4] - trap_ipc, each[5]] == [3, 1, 3]
    # warm: the same, except that the call finds its own pages after the switch back
    assert [each[6], each[7] - trap_ipc, each[8]] == [3, 1, 3]
    assert [each[9], each[10] - trap_ipc, each[11]] == [3, 1, 3]
    assert cost.tlb_misses == 17 + 14
    # the kernel's share: 11 cold, then 8 per round trip, 6 of them right after the switches
    assert cost.tlb_misses - price(trace, profile("tlb.global_kernel=false")).tlb_misses == 11 + 8


def test_global_kernel_pages_are_refilled_only_once() -> None:
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 2
    cost, each = price_each(trace, profile(*KERNEL_PATH))
    assert each[2] == each[5] == each[8] == each[11] == 0  # nothing refilled after a switch
    assert cost.tlb_misses == 12 + 4  # user pages every time; kernel pages cold only


def test_utcb_and_kip_are_refilled_in_each_space() -> None:
    """Kernels with UTCB and KIP (Pistachio): user mappings, flushed with their space."""
    p = profile(*KERNEL_PATH, "ipc.utcb_pages=1", "ipc.kip_pages=1")
    trace = round_trip((1, 2, 3), (7, 8, 9)) * 2
    _, each = price_each(trace, p)
    trap_ipc = p.get_int("cpu.trap_cycles") + p.get_int("ipc.path_cycles")
    # warm round trip (kernel pages global): the call finds the app's UTCB and the KIP,
    # refilled after the switch back; each switch refills the new space's UTCB and KIP
    assert [each[7] - trap_ipc, each[8]] == [0, 2]
    assert [each[10] - trap_ipc, each[11]] == [0, 2]


def test_an_ipc_within_one_space_touches_both_sides_at_once() -> None:
    a, b = ThreadId(APP, 0), ThreadId(APP, 1)
    call = IpcCall(seq=0, src=a, dst=b, message=Getpid())
    cost = price([call], profile(*KERNEL_PATH, "tlb.global_kernel=false"))
    assert cost.tlb_misses == 4  # code, data, both blocks; the exit side hits
