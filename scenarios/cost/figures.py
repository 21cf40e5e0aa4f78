"""Published L4 figures of machines other than the seed's, and how the model computes each.

The seed gives figures of one machine (the Duron, ``scenarios.report.reproduce.SPECS``).  This
module adds the published figures of other x86 machines, each with the profile that
describes that machine (``scenarios/profiles/<machine>.toml``).  The software constants
(the kernel's IPC path, Linux's and L4Linux's work) are calibrated once, each against one
figure, and carried to the other profiles unchanged (``software_from`` and ``from`` in
the profile files); so a row is **predicted** unless one of its machine's constants was
solved against that very row (``calibrated_by``).

Two kinds of run are priced:

- ``pingpong``: the classic IPC benchmark, two threads calling each other in a loop, in
  two address spaces (or in one, for the same-space baseline).  Its trace is written here
  from the benchmark's structure (no server protocol is involved): each side touches its
  code, data and stack page, then calls or replies; the kernel's side of each IPC is the
  machine model's (``scenarios.cost.machine.ipc_entry_pages``).  A row is the average of the
  last ``PINGPONG`` round trips after ``WARMUP`` round trips (caches and TLB warm).
- SawMill's "re-reading 4 KB" on Linux and L4Linux: the recorded read loops of
  ``scenarios.record.traces`` with no wait for the data (a re-read hits the page cache:
  ``work.wait.read`` = 0).

Tolerances: cycle figures that the sources give as "about" are matched within 15%;
the TLB-miss figure is a lower bound ("at least 5"), matched when the model reaches it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

import attrs

from protocols.ids import ThreadId
from protocols.linux import Getpid, GetpidReply
from protocols.trace import Event, IpcCall, IpcReply, SpaceSwitch, Touch
from scenarios._common import ScenarioError
from scenarios.cost.machine import price, price_each
from scenarios.cost.profile import Profile, ProfileError, load_profile
from scenarios.record.traces import syscall_loop

__all__ = ["MACHINE_SPECS", "MachineSpec", "pingpong", "pingpong_figures"]

PINGPONG: Final = 200
"""Measured round trips of the ping-pong benchmark."""
WARMUP: Final = 20
"""Round trips before the measurement (cold misses excluded, as benchmarks do)."""
READS: Final = 50
"""Re-reads of 4 KB priced per row (after as many warm-up reads)."""

CODE, DATA, STACK = 0x08048, 0x0804A, 0xBFFFE
"""The benchmark thread's pages: its loop's text, its data, its stack."""


@functools.lru_cache(maxsize=4)
def pingpong(round_trips: int, same_space: bool = False) -> tuple[Event, ...]:
    """Two threads calling each other ``round_trips`` times (in one space if asked)."""
    a = ThreadId(5)
    b = ThreadId(5, 1) if same_space else ThreadId(6)
    a_pages = (CODE, DATA, STACK)
    b_pages = (CODE, DATA, STACK - 1) if same_space else a_pages
    events: list[Event] = []
    for _ in range(round_trips):
        events.append(Touch(seq=0, task=a.task, region="loop", pages=a_pages))
        events.append(IpcCall(seq=0, src=a, dst=b, message=Getpid()))
        if not same_space:
            events.append(SpaceSwitch(seq=0, src=a.task, dst=b.task))
        events.append(Touch(seq=0, task=b.task, region="loop", pages=b_pages))
        events.append(IpcReply(seq=0, src=b, dst=a, message=GetpidReply(pid=a.task)))
        if not same_space:
            events.append(SpaceSwitch(seq=0, src=b.task, dst=a.task))
    return tuple(events)


@attrs.frozen
class PingPong:
    """One IPC of the warm benchmark: cycles and TLB misses."""

    cycles: float
    tlb_misses: float


def pingpong_figures(profile: Profile, same_space: bool = False) -> PingPong:
    """Cycles and TLB misses per one-way IPC, warm (the last ``PINGPONG`` round trips)."""
    every = pingpong(WARMUP + PINGPONG, same_space)
    warm = pingpong(WARMUP, same_space)
    cost, each = price_each(every, profile)
    ipcs = 2 * PINGPONG
    return PingPong(
        cycles=sum(each[len(warm) :]) / ipcs,
        tlb_misses=(cost.tlb_misses - price(warm, profile).tlb_misses) / ipcs,
    )


def _oneway(p: Profile) -> float:
    return pingpong_figures(p).cycles


def _penalty(p: Profile) -> float:
    return pingpong_figures(p).cycles - pingpong_figures(p, same_space=True).cycles


def _misses(p: Profile) -> float:
    return pingpong_figures(p).tlb_misses


def _read(mode: str) -> Callable[[Profile], float]:
    def model(p: Profile) -> float:
        q = p.with_overrides(("work.wait.read=0",))
        every = syscall_loop("read", mode, 2 * READS)
        warm = syscall_loop("read", mode, READS)
        return (price(every, q).cycles - price(warm, q).cycles) / READS

    return model


@attrs.frozen(kw_only=True)
class MachineSpec:
    """A published figure of a machine other than the seed's."""

    id: str
    machine: str
    """The profile that describes the machine (and the setup the figure was taken on)."""
    figure: str
    seed: float
    """The published value (called ``seed`` like the seed's figures)."""
    unit: str
    tolerance: float
    relative: bool
    calibrated_by: str
    """The constant solved against this figure; empty for a prediction."""
    source: str
    model: Callable[[Profile], float]
    at_least: bool = False
    """The figure is a lower bound ("at least 5 TLB misses")."""
    miss_reason: str = ""
    """Why the model misses this figure, printed when it is out of tolerance."""


MACHINE_SPECS: Final = (
    MachineSpec(
        id="p166.ipc.oneway.cycles",
        machine="pentium166",
        figure="L4/x86 one-way IPC between address spaces",
        seed=121,
        unit="cycles",
        tolerance=0.15,
        relative=True,
        calibrated_by="",
        source="Liedtke et al., Achieved IPC performance, HotOS 1997",
        model=_oneway,
        miss_reason="the P5 has no global pages, so after every switch the model refills the "
        "kernel's code, data and control blocks besides the benchmark's own pages, and these "
        "refills at the assumed P5 cost alone exceed the published IPC.  Liedtke's hand-coded "
        "kernel must have avoided most of them (e.g. with small address spaces); the profile "
        "describes it with L4Ka's path and page counts instead",
    ),
    MachineSpec(
        id="p2_400.ipc.oneway.cycles",
        machine="pentium2-400",
        figure="Hazelnut one-way IPC between address spaces",
        seed=273,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="ipc.path_cycles (L4Ka)",
        source="L4 comparative performance table, trustworthy.systems",
        model=_oneway,
    ),
    MachineSpec(
        id="p3_800.ipc.switch_penalty.cycles",
        machine="pentium3-800",
        figure="Pistachio: penalty of an IPC between address spaces",
        seed=170,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="tlb.miss_cycles (P6)",
        source="l4ka.org, Pistachio ia32 performance page",
        model=_penalty,
    ),
    MachineSpec(
        id="p3_800.ipc.tlb_misses",
        machine="pentium3-800",
        figure="Pistachio: TLB misses per IPC between address spaces",
        seed=5,
        unit="misses",
        tolerance=0.0,
        relative=False,
        calibrated_by="",
        source="l4ka.org, Pistachio ia32 performance page (code, stack, data, UTCB, KIP)",
        model=_misses,
        at_least=True,
    ),
    MachineSpec(
        id="p3_500.read.linux.cycles",
        machine="pentium3-500",
        figure="SawMill: re-reading 4 KB on Linux",
        seed=3000,
        unit="cycles",
        tolerance=0.15,
        relative=True,
        calibrated_by="",
        source="Gefflaut et al., The SawMill multiserver approach, SIGOPS EW 2000",
        model=_read("native"),
        miss_reason="Linux's own read work is the Duron's assumed work.linux.read; "
        "nothing ties it to Linux 2.2's read path on a Pentium III",
    ),
    MachineSpec(
        id="p3_500.read.l4linux.cycles",
        machine="pentium3-500",
        figure="SawMill: re-reading 4 KB on L4Linux",
        seed=4200,
        unit="cycles",
        tolerance=0.15,
        relative=True,
        calibrated_by="",
        source="Gefflaut et al., The SawMill multiserver approach, SIGOPS EW 2000",
        model=_read("l4linux"),
        miss_reason="as the Linux row: Linux's read work is assumed, carried from the Duron",
    ),
    MachineSpec(
        id="p4_1400.ipc.oneway.cycles",
        machine="pentium4-1400",
        figure="Hazelnut one-way IPC between address spaces",
        seed=1008,
        unit="cycles",
        tolerance=0.15,
        relative=True,
        calibrated_by="",
        source="L4 comparative performance table, trustworthy.systems",
        model=_oneway,
        miss_reason="the Pentium 4's trap and CR3 costs are assumed (Intel publishes neither)",
    ),
    MachineSpec(
        id="opteron242.ipc.oneway.cycles",
        machine="opteron242",
        figure="Pistachio one-way IPC between address spaces",
        seed=230,
        unit="cycles",
        tolerance=0.15,
        relative=True,
        calibrated_by="",
        source="L4 comparative performance table, trustworthy.systems",
        model=_oneway,
        miss_reason="the Duron's assumed K7 costs of a CR3 load and a TLB refill, carried "
        "here, make a switch and its five refills alone cost more than the published IPC: "
        "either the K8 is much cheaper or the Duron's assumed split is off, in which case its "
        "calibrated Fiasco IPC path would be larger and its switch costs smaller",
    ),
)
"""The published figures of the other machines (REFERENCE figures beyond the seed)."""


def machine_profile(name: str, overrides: tuple[str, ...] = ()) -> Profile:
    """A shipped machine profile; a bad one is a one-line ``ScenarioError``."""
    try:
        return load_profile(name, overrides)
    except ProfileError as exc:
        raise ScenarioError(str(exc)) from None


def machines() -> tuple[str, ...]:
    """The machines with published figures, in the order of ``MACHINE_SPECS``."""
    return tuple(dict.fromkeys(s.machine for s in MACHINE_SPECS))
