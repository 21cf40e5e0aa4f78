"""mitigations: getpid and fork under the seed's proposed fixes and their combinations.

The seed's first post ends with three proposals against the cost of L4Linux's context
switches: tagged TLBs (no flush on an address-space switch), cache colouring (L4Linux
and its applications use disjoint cache sets) and small address spaces (no switch at all
for a system call).  Nothing here is calibrated: the same recorded runs as ``getpid``
and ``fork`` are priced with the profile's keys ``tlb.tagged``, ``small_spaces`` and
``cache.coloring`` switched on, alone and together; the numbers are the model's
predictions.

Run alone: ``python -m scenarios.scripts.mitigations --json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION
from scenarios._common import (
    ScenarioError,
    positive_int,
    priced,
    scenario_parser,
    script_main,
)
from scenarios.cost.profile import Profile, ProfileError
from scenarios.record.traces import fork_pairs, syscall_loop

__all__ = ["CONFIGS", "FORK_STRATEGIES", "MitigationRow", "main", "measure", "setup"]

CONFIGS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("none (2006)", ()),
    ("tagged TLB", ("tlb.tagged=true",)),
    ("small spaces", ("small_spaces=true",)),
    ("colouring", ("cache.coloring=true",)),
    ("tagged + colouring", ("tlb.tagged=true", "cache.coloring=true")),
    ("small spaces + colouring", ("small_spaces=true", "cache.coloring=true")),
    ("all three", ("tlb.tagged=true", "small_spaces=true", "cache.coloring=true")),
)
"""Each configuration's name and the profile overrides that make it."""
FORK_STRATEGIES: Final = ("classic", "chief+cache")
CALLS: Final = 2000
PAIRS: Final = 100


@attrs.frozen(kw_only=True)
class MitigationRow:
    """getpid and fork priced under one configuration."""

    config: str
    overrides: tuple[str, ...]
    getpid_cycles: float
    getpid_tlb_misses: float
    getpid_cache_misses: float
    native_cycles: float
    fork_cycles: tuple[tuple[str, float], ...]

    def to_json(self) -> dict[str, object]:
        """One row of the scenario's JSON."""
        return {
            "config": self.config,
            "set": list(self.overrides),
            "getpid_cycles_per_call": round(self.getpid_cycles, 3),
            "getpid_tlb_misses_per_call": round(self.getpid_tlb_misses, 4),
            "getpid_cache_misses_per_call": round(self.getpid_cache_misses, 4),
            "getpid_native_cycles_per_call": round(self.native_cycles, 3),
            "fork_cycles_per_fork": {k: round(v, 1) for k, v in self.fork_cycles},
        }


def measure(
    profile: Profile,
    calls: int = CALLS,
    pairs: int = PAIRS,
    edition: str = DEFAULT_EDITION.name,
) -> tuple[MitigationRow, ...]:
    """Price getpid (native and L4Linux) and fork under every configuration."""
    rows = []
    getpid = syscall_loop("getpid", "l4linux", calls, edition)
    native = syscall_loop("getpid", "native", calls)
    forks = {s: fork_pairs(s, pairs, edition) for s in FORK_STRATEGIES}
    for name, overrides in CONFIGS:
        try:
            p = profile.with_overrides(overrides)
        except ProfileError as exc:
            raise ScenarioError(str(exc)) from None
        g = priced(getpid, p)
        rows.append(
            MitigationRow(
                config=name,
                overrides=overrides,
                getpid_cycles=g.cycles / calls,
                getpid_tlb_misses=g.tlb_misses / calls,
                getpid_cache_misses=g.cache_misses / calls,
                native_cycles=priced(native, p).cycles / calls,
                fork_cycles=tuple((s, priced(e, p).cycles / pairs) for s, e in forks.items()),
            )
        )
    return tuple(rows)


def setup(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the scenario's arguments."""
    parser = scenario_parser("mitigations", __doc__)
    parser.add_argument(
        "-n", "--calls", type=positive_int, default=CALLS, help="getpid calls per variant"
    )
    parser.add_argument(
        "--pairs", type=positive_int, default=PAIRS, help="fork+exit pairs per variant"
    )
    return parser.parse_args(argv)


@attrs.frozen(kw_only=True)
class MitigationsTable:
    """``l4sim run mitigations``: one row per configuration."""

    rows: tuple[MitigationRow, ...]

    def to_json(self, profile: Profile) -> dict[str, object]:
        """The scenario's JSON object."""
        rows = [r.to_json() for r in self.rows]
        return {"scenario": "mitigations", "profile": profile.name, "rows": rows}

    def to_lines(self, profile: Profile) -> list[str]:
        """The scenario's report for people."""
        head = f"{'configuration':<26}{'getpid':>9}{'TLB/call':>9}{'native':>8}"
        head += "".join(f"{'fork ' + s:>18}" for s in FORK_STRATEGIES)
        lines = [f"mitigations, profile {profile.name} (cycles per getpid / per fork+exit)", head]
        for r in self.rows:
            line = f"{r.config:<26}{r.getpid_cycles:>9.0f}{r.getpid_tlb_misses:>9.2f}"
            line += f"{r.native_cycles:>8.0f}" + "".join(f"{v:>18.0f}" for _, v in r.fork_cycles)
            lines.append(line)
        return lines


def report(args: argparse.Namespace, profile: Profile) -> MitigationsTable:
    """``l4sim run mitigations``: the rows its arguments ask for."""
    return MitigationsTable(rows=measure(profile, args.calls, args.pairs, args.edition))


main = script_main("mitigations", setup, report)


if __name__ == "__main__":
    raise SystemExit(main(None))
