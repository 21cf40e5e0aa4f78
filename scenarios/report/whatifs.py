"""The what-ifs of ``l4sim reproduce``: the seed's proposals (tagged TLB, small address
spaces, cache colouring, all three; merging the task server into RMGR; a cheaper task
server init) priced on the same recorded runs as the report's rows.  Nothing is
calibrated against them: they are predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

from scenarios._common import (
    ScenarioError,
    priced,
)
from scenarios.cost.profile import Profile, ProfileError
from scenarios.record.traces import fork_pairs, syscall_loop
from scenarios.report.measure import Measured, Sizes
from scenarios.scripts import boot as boot_scenario

__all__ = ["MITIGATIONS", "WhatIf", "value_text", "whatifs"]

Progress = Callable[[str], None]


def _quiet(_step: str) -> None:
    return None


def value_text(unit: str, value: float) -> str:
    if unit == "speedup":
        return f"{value:.1%}"
    if unit == "share":
        return f"{value:.2%}"
    if unit == "misses" and value < 100:
        return f"{value:.2f}"
    return f"{value:,.0f}"


@attrs.frozen(kw_only=True)
class WhatIf:
    """A prediction the seed could only propose (``baseline``: the 2006 value, if any)."""

    id: str
    what: str
    model: float
    unit: str
    baseline: float | None = None

    def to_json(self) -> dict[str, object]:
        """The what-if in ``--json``."""
        return {
            "id": self.id,
            "what": self.what,
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "model": round(self.model, 4),
            "unit": self.unit,
        }

    def text(self) -> str:
        """One printed line."""
        model = value_text(self.unit, self.model)
        if self.baseline is None:
            return f"  {self.what:<62}{model:>10}"
        base = value_text(self.unit, self.baseline)
        return f"  {self.what:<62}{model:>10}  (2006: {base})"


MITIGATIONS: Final = (
    ("tagged", "tagged TLB", ("tlb.tagged=true",)),
    ("small_spaces", "small address spaces", ("small_spaces=true",)),
    ("coloring", "cache colouring", ("cache.coloring=true",)),
    (
        "all",
        "all three together",
        ("tlb.tagged=true", "small_spaces=true", "cache.coloring=true"),
    ),
)


def whatifs(
    profile: Profile, m: Measured, sizes: Sizes, progress: Progress = _quiet
) -> tuple[WhatIf, ...]:
    """The model's predictions under the seed's proposals."""
    out: list[WhatIf] = []
    getpid = syscall_loop("getpid", "l4linux", sizes.l4linux_calls, m.edition)
    cache_forks = fork_pairs("chief+cache", sizes.pairs, m.edition)
    classic_forks = fork_pairs("classic", sizes.pairs, m.edition)
    for key, name, overrides in MITIGATIONS:
        progress(f"what-if {name}")
        try:
            p = profile.with_overrides(overrides)
        except ProfileError as exc:
            raise ScenarioError(str(exc)) from None
        g = priced(getpid, p)
        out.append(
            WhatIf(
                id=f"getpid.l4linux.cycles.{key}",
                what=f"L4Linux getpid, {name}",
                baseline=m.l4linux_cycles_per_call,
                model=g.cycles / sizes.l4linux_calls,
                unit="cycles",
            )
        )
        out.append(
            WhatIf(
                id=f"getpid.l4linux.tlb_misses_per_call.{key}",
                what=f"L4Linux getpid TLB misses per call, {name}",
                baseline=m.l4linux_misses_per_call,
                model=g.tlb_misses / sizes.l4linux_calls,
                unit="misses",
            )
        )
        out.append(
            WhatIf(
                id=f"fork.classic.cycles.{key}",
                what=f"fork+exit via the task server, {name}",
                baseline=m.fork("classic"),
                model=priced(classic_forks, p).cycles / sizes.pairs,
                unit="cycles",
            )
        )
        out.append(
            WhatIf(
                id=f"fork.cache.cycles.{key}",
                what=f"fork+exit with chief + cache, {name}",
                baseline=m.fork("chief+cache"),
                model=priced(cache_forks, p).cycles / sizes.pairs,
                unit="cycles",
            )
        )
    out.append(
        WhatIf(
            id="fork.merged.speedup",
            what="fork+exit, task server merged into RMGR: speedup vs classic",
            model=m.speedup("merged"),
            unit="speedup",
        )
    )
    out.append(
        WhatIf(
            id="fork.chief.time_saved",
            what="fork+exit, allocate_chief: time saved (1 - T/T_classic)",
            model=1 - m.fork("chief") / m.fork("classic"),
            unit="speedup",
        )
    )
    out.append(
        WhatIf(
            id="fork.cache.time_saved",
            what="fork+exit, chief + cache: time saved (1 - T/T_classic)",
            model=1 - m.fork("chief+cache") / m.fork("classic"),
            unit="speedup",
        )
    )
    out.append(
        WhatIf(
            id="read.l4linux_overhead_share",
            what="blocking read: share that L4Linux's IPC path costs",
            model=m.read.overhead / m.read.cycles,
            unit="share",
        )
    )
    progress("what-if cheaper boot")
    b = boot_scenario.measure(sizes.managed, profile, m.edition)
    out.append(
        WhatIf(
            id="boot.task_server_init.cycles",
            what=f"task server init ({sizes.managed} tasks), asking RMGR for the count",
            baseline=float(b.every.cycles),
            model=float(b.count.cycles),
            unit="cycles",
        )
    )
    return tuple(out)
