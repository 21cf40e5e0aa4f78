"""The fast pricing engine against the plain model (the spec): identical results.

``scenarios.cost.machine`` prices with the engine tuned for speed
(``scenarios.cost.engine``); ``scenarios.cost.plain`` is the pricing model written
plainly.  Both must give the same ``Cost`` and the same cycles per event, on recorded
scenario traces and on random traces over small machines where every TLB and cache set
overflows, every kind of switch happens and the timer ticks often.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import ErrorCode
from protocols.ids import ThreadId
from protocols.linux import Fork, Getpid, GetpidReply
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work
from scenarios.cost.machine import PricingError, price, price_each
from scenarios.cost.plain import price_each as reference_price_each
from scenarios.cost.profile import Profile, load_profile
from scenarios.cost.slices import TlbSlices
from scenarios.record import traces

VARIANTS: tuple[tuple[str, ...], ...] = (
    (),
    ("tlb.tagged=true",),
    ("small_spaces=true",),
    ("cache.coloring=true",),
    ("tlb.global_kernel=false",),
    ("small_spaces=true", "cache.coloring=true", "tlb.global_kernel=false"),
    ("cache.ways=1", "cache.size_kb=8"),
    ("cache.ways=4", "cache.size_kb=8", "cache.coloring=true"),
    ("tlb.entries=8", "tlb.ways=2", "timer.hz=20000"),
    ("cache.lines_per_touch=70", "timer.switch_every=1"),
    ("tlb.global_kernel=false", "ipc.utcb_pages=1", "ipc.kip_pages=1", "ipc.tcb_pages=2"),
)
"""Profile overrides: the shipped machine and machines that stress other paths."""

SMALL = (
    "tlb.entries=8",
    "cache.size_kb=1",
    "cache.line_bytes=64",
    "cache.page_bytes=256",  # 4 lines per page, 8 sets, 2 colours (two-way)
    "cache.lines_per_touch=3",
    "timer.hz=400000",  # a tick every 2000 cycles
    "timer.other_pages=3",
    "timer.other_cycles=500",
    "timer.tick_cycles=100",
    "timer.switch_every=2",
)
"""A tiny machine for random traces: everything collides, the timer ticks constantly."""


def same(events: tuple[Event, ...] | list[Event], profile: Profile) -> None:
    fast = price_each(events, profile)
    assert fast == reference_price_each(events, profile)
    assert price(events, profile) == fast[0]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda v: ",".join(v) or "duron800")
def test_scenario_traces_price_as_the_reference_does(overrides: tuple[str, ...]) -> None:
    profile = load_profile("duron800", overrides)
    for events in (
        traces.fork_pairs("classic", 3),
        traces.fork_pairs("chief+cache", 3),
        traces.syscall_loop("getpid", "native", 20),
        traces.syscall_loop("read", "l4linux", 5),
    ):
        same(events, profile)


def test_apps_override_prices_as_the_reference_does() -> None:
    profile = load_profile("duron800", ("cache.coloring=true", "small_spaces=true"))
    events = traces.fork_pairs("classic", 2)
    apps = frozenset({5, 7})
    assert price_each(events, profile, apps=apps) == reference_price_each(
        events, profile, apps=apps
    )


TASKS = (0, 5, 6, 7)
UNITS = ("linux.getpid", "linux.fork", "kernel.task_new", "wait.read")


def _event(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(("touch", "touch", "switch", "work", "call", "reply", "sys")))
    task = draw(st.sampled_from(TASKS))
    tid = ThreadId(task)
    if kind == "touch":
        pages = draw(st.lists(st.integers(0, 12), min_size=0, max_size=6))
        return Touch(seq=0, task=task, region="r", pages=tuple(pages))
    if kind == "switch":
        return SpaceSwitch(seq=0, src=task, dst=draw(st.sampled_from(TASKS)))
    if kind == "work":
        return Work(seq=0, task=task, unit=draw(st.sampled_from(UNITS)))
    if kind == "call":
        dst = ThreadId(draw(st.sampled_from(TASKS)))
        if draw(st.booleans()):
            return IpcFail(seq=0, src=tid, dst=dst, code=ErrorCode.ENOT_EXISTENT, request="X")
        return IpcCall(seq=0, src=tid, dst=dst, message=draw(st.sampled_from((Getpid(), 1))))
    if kind == "reply":
        return IpcReply(seq=0, src=tid, dst=tid, message=GetpidReply(pid=task))
    return Syscall(seq=0, caller=tid, request=draw(st.sampled_from((Fork(), 2))), reply=None)


@st.composite
def random_traces(draw: st.DrawFn) -> list[Event]:
    return [_event(draw) for _ in range(draw(st.integers(0, 60)))]


@given(
    events=random_traces(),
    overrides=st.lists(
        st.sampled_from(
            (
                "tlb.tagged=true",
                "small_spaces=true",
                "cache.coloring=true",
                "tlb.global_kernel=false",
                "cache.ways=1",
                "cache.ways=4",
                "tlb.ways=1",
                "tlb.ways=8",
                "ipc.kernel_pages=3",
                "ipc.tcb_pages=2",
                "ipc.utcb_pages=1",
                "ipc.kip_pages=1",
                "timer.switch_every=1",
            )
        ),
        max_size=4,
        unique=True,
    ),
)
def test_random_traces_price_as_the_reference_does(
    events: list[Event], overrides: list[str]
) -> None:
    same(events, load_profile("duron800", (*SMALL, *overrides)))


@given(events=random_traces(), tagged=st.booleans())
def test_long_slices_without_a_flush_price_as_the_reference_does(
    events: list[Event], tagged: bool
) -> None:
    """Past ``MAX_DEPTH`` touches without a flush the TLB runs on its real sets."""
    overrides = (*SMALL, "tlb.tagged=true") if tagged else SMALL
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TlbSlices, "MAX_DEPTH", 2)
        same(events, load_profile("duron800", overrides))


def test_an_unknown_work_unit_is_refused_by_both() -> None:
    events = [Work(seq=0, task=5, unit="linux.nothing")]
    with pytest.raises(PricingError):
        price_each(events, load_profile())
    with pytest.raises(PricingError):
        reference_price_each(events, load_profile())
