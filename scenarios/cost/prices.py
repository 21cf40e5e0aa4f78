"""What ``hardened`` costs: the price of each fix per fork+exit, from the cost model.

A fix's price is measured, never estimated: the fork scenario (init forks a child, the
child exits, init reaps it) is recorded once in ``l4env-2007`` and once in
``l4env-2007`` plus that one fix (``Edition.custom``), under each L4Linux strategy, and
both traces are priced on the same profile.  The price is the difference per fork+exit in
IPC calls, kernel system calls (``l4_task_new``, ``l4_thread_schedule``, ...) and
cycles.  The last rows price ``hardened`` (every fix at once) the same way; it need not be
the sum of the single prices when two fixes touch the same path.

``l4sim findings`` prints this table after the findings (``--no-prices`` leaves it out).
"""

from __future__ import annotations

from typing import Final

import attrs

from protocols.editions import HARDENED, L4ENV_2007, Edition, Fix
from scenarios.cost.profile import Profile
from scenarios.record.l4world import STRATEGIES
from scenarios.scripts import fork

__all__ = ["PAIRS", "Price", "measure", "render", "to_json"]

PAIRS: Final = 8
"""Fork+exit pairs per run: enough for the task cache to reach its steady state."""


@attrs.frozen(kw_only=True)
class Price:
    """What one set of fixes adds to a fork+exit under one strategy (negative: saves)."""

    what: str
    """The fix's name in lower case, or ``hardened`` for every fix at once."""
    strategy: str
    ipc: float
    syscalls: float
    cycles: float
    share: float
    """``cycles`` as a share of the ``l4env-2007`` fork+exit under this strategy."""


def _per_fork(strategy: str, ed: Edition, pairs: int, profile: Profile) -> tuple[float, ...]:
    run = fork.measure(strategy, pairs, profile, ed)
    return run.ipc / pairs, run.syscalls / pairs, run.cycles_per_fork


def measure(profile: Profile, pairs: int = PAIRS) -> tuple[Price, ...]:
    """The price of every fix alone, then of ``hardened``, under every strategy."""
    sets: list[tuple[str, Edition]] = [(fix.name.lower(), Edition.custom({fix})) for fix in Fix]
    sets.append((HARDENED.name, HARDENED))
    out = []
    for strategy in STRATEGIES:
        base = _per_fork(strategy, L4ENV_2007, pairs, profile)
        for what, ed in sets:
            ipc, calls, cycles = _per_fork(strategy, ed, pairs, profile)
            out.append(
                Price(
                    what=what,
                    strategy=strategy,
                    ipc=round(ipc - base[0], 3),
                    syscalls=round(calls - base[1], 3),
                    cycles=round(cycles - base[2], 1),
                    share=round((cycles - base[2]) / base[2], 5),
                )
            )
    return tuple(out)


def _cell(p: Price) -> str:
    if not (p.ipc or p.syscalls or p.cycles):
        return "0"
    calls = []
    if p.ipc:
        calls.append(f"{p.ipc:+g} IPC")
    if p.syscalls:
        calls.append(f"{p.syscalls:+g} sys")
    extra = f" ({', '.join(calls)})" if calls else ""
    return f"{p.cycles:+,.0f} cyc{extra}"


def render(prices: tuple[Price, ...], profile: Profile) -> list[str]:
    """The price table as text lines: one row per fix, one column per strategy."""
    strategies = list(dict.fromkeys(p.strategy for p in prices))
    rows = list(dict.fromkeys(p.what for p in prices))
    cell = {(p.what, p.strategy): _cell(p) for p in prices}
    width = max([14, *(len(c) + 2 for c in cell.values())])
    lines = [
        f"What the fixes cost per fork+exit (cycles, and IPCs and kernel calls added, against "
        f"l4env-2007; profile {profile.name}):",
        f"  {'fix':<42}" + "".join(f"{s:>{width}}" for s in strategies),
    ]
    for what in rows:
        lines.append(f"  {what:<42}" + "".join(f"{cell[what, s]:>{width}}" for s in strategies))
    return lines


def to_json(prices: tuple[Price, ...]) -> list[dict[str, object]]:
    """The price table as JSON rows."""
    return [attrs.asdict(p) for p in prices]
