"""The machine model's public face: ``price`` and ``price_each``.

``price(trace, profile)`` is a pure, deterministic function: it walks the events of a
trace (``protocols.trace``) in order on a simulated CPU (a TLB, a cache, a timer) and
returns a ``Cost``: the cycles, the TLB and cache misses and a breakdown of the cycles by
category.  Actors never count cycles; pricing is the only place that turns what happened
into what it cost.

The cost model is in three modules, each with one job:

- ``scenarios.cost.plain``: the spec, written plainly; its docstring says how every event
  is priced and where each rule is (a TLB miss is counted in ``_Cpu.touch``);
- ``scenarios.cost.layout``: where things are, shared by both engines (the pages the
  kernel touches, the frame and cache lines behind a page);
- ``scenarios.cost.engine`` (with ``scenarios.cost.slices``): the same model, fast; this
  module prices with it, and the tests check it against the spec cycle for cycle.

The constants come from the profile's typed sections (``scenarios.cost.schema``).
"""

from __future__ import annotations

from collections.abc import Iterable

from protocols.trace import Event
from scenarios.cost.engine import Engine
from scenarios.cost.layout import OTHER_TASK, ipc_entry_pages, ipc_exit_pages
from scenarios.cost.plain import Cache, Cost, PricingError, Tlb, first_task, linux_apps
from scenarios.cost.profile import Profile

__all__ = [
    "OTHER_TASK",
    "Cache",
    "Cost",
    "PricingError",
    "Tlb",
    "ipc_entry_pages",
    "ipc_exit_pages",
    "linux_apps",
    "price",
    "price_each",
]


def price(
    trace: Iterable[Event],
    profile: Profile,
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
    profile: Profile,
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
    profile: Profile,
    apps: frozenset[int] | None,
    *,
    per_event: bool,
) -> tuple[Cost, tuple[int, ...]]:
    events = tuple(trace)
    s = profile.sections
    if apps is None:
        # Only colouring and small spaces tell applications apart: skip the scan otherwise.
        coloured = s.cache.coloring.value or s.small_spaces.value
        apps = linux_apps(events) if coloured else frozenset()
    return Engine(s, apps, first_task(events)).run(events, per_event)
