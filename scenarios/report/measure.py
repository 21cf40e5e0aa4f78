"""The recorded, priced runs that ``l4sim reproduce`` computes every row and what-if from.

``measure`` records (once per process) the native and L4Linux getpid loops, the blocking
read and the fork+exit pairs of every chief-allocation strategy, and prices them on one
profile; ``Measured`` holds the costs and derives the per-call figures the rows compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION
from scenarios._common import priced
from scenarios.cost.machine import Cost
from scenarios.cost.profile import Profile
from scenarios.record.l4world import STRATEGIES
from scenarios.record.traces import fork_pairs, syscall_loop
from scenarios.scripts import boot as boot_scenario
from scenarios.scripts import fork as fork_scenario
from scenarios.scripts import read as read_scenario
from scenarios.scripts.getpid import NATIVE_MISS_CALLS

__all__ = ["SIZES", "Measured", "Progress", "Sizes", "measure", "quiet"]


@attrs.frozen(kw_only=True)
class Sizes:
    """How many calls, reads and fork pairs each recorded run makes."""

    native_calls: int = NATIVE_MISS_CALLS
    l4linux_calls: int = 2000
    reads: int = read_scenario.READS
    pairs: int = fork_scenario.PAIRS
    managed: int = boot_scenario.MANAGED


SIZES: Final = Sizes()
"""The sizes of ``l4sim reproduce`` (tests pass smaller ones)."""


@attrs.frozen(kw_only=True)
class Measured:
    """The priced runs every row and what-if is computed from."""

    sizes: Sizes
    edition: str
    """The edition of the L4 system every run was recorded in."""
    native: Cost
    l4linux: Cost
    read: read_scenario.ReadRun
    forks: tuple[tuple[str, Cost], ...]

    @property
    def l4linux_cycles_per_call(self) -> float:
        """Cycles per L4Linux getpid."""
        return self.l4linux.cycles / self.sizes.l4linux_calls

    @property
    def l4linux_misses_per_call(self) -> float:
        """TLB misses per L4Linux getpid."""
        return self.l4linux.tlb_misses / self.sizes.l4linux_calls

    def fork(self, strategy: str) -> float:
        """Cycles per fork+exit pair under ``strategy``."""
        return dict(self.forks)[strategy].cycles / self.sizes.pairs

    def speedup(self, strategy: str) -> float:
        """The seed's "performance increase" of ``strategy`` over ``classic``."""
        return self.fork("classic") / self.fork(strategy) - 1


Progress = Callable[[str], None]


def quiet(_step: str) -> None:
    return None


def measure(
    profile: Profile,
    sizes: Sizes = SIZES,
    progress: Progress = quiet,
    edition: str = DEFAULT_EDITION.name,
) -> Measured:
    """Record (once per process) and price every run the report needs."""
    progress("native getpid")
    native = priced(syscall_loop("getpid", "native", sizes.native_calls), profile)
    progress("L4Linux getpid")
    l4linux = priced(syscall_loop("getpid", "l4linux", sizes.l4linux_calls, edition), profile)
    progress("blocking read")
    read = read_scenario.measure(sizes.reads, profile, edition)
    forks = []
    for strategy in STRATEGIES:
        progress(f"fork {strategy}")
        forks.append((strategy, priced(fork_pairs(strategy, sizes.pairs, edition), profile)))
    return Measured(
        sizes=sizes,
        edition=edition,
        native=native,
        l4linux=l4linux,
        read=read,
        forks=tuple(forks),
    )
