"""getpid: N ``sys_getpid()`` calls, native or on L4Linux.

Covers the seed's first post (on L4Linux system calls): ``getpid.native.cycles`` (~260),
``getpid.l4linux.cycles`` (~3,700), ``getpid.native.tlb_misses_per_100k`` (~200) and
``getpid.l4linux.tlb_misses_per_call`` (6).  Natively the process traps into Linux in its
own address space; on L4Linux each call is an IPC to the Linux server and a reply, two
address-space switches that flush the untagged TLB.  Only the benchmark loop is priced
(booting and starting the process are not).

Run alone: ``python -m scenarios.scripts.getpid --mode l4linux -n 2000 --json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION
from protocols.trace import Event
from scenarios._common import (
    per,
    positive_int,
    priced,
    scenario_parser,
    script_main,
)
from scenarios.cost.machine import Cost
from scenarios.cost.profile import Profile
from scenarios.record.traces import MODES, syscall_loop

__all__ = ["CALLS", "MODES", "GetpidRun", "main", "measure", "record", "setup"]

CALLS: Final = 2000
"""Default number of calls: enough for the timer to tick a few times on L4Linux."""
NATIVE_MISS_CALLS: Final = 100_000
"""The seed counted native TLB misses over 100,000 calls."""


@attrs.frozen(kw_only=True)
class GetpidRun:
    """A priced run of ``calls`` getpid calls."""

    mode: str
    calls: int
    cost: Cost

    def to_json(self, profile: Profile) -> dict[str, object]:
        """The scenario's JSON object."""
        c, n = self.cost, self.calls
        return {
            "scenario": "getpid",
            "mode": self.mode,
            "calls": n,
            "profile": profile.name,
            "cycles_per_call": round(c.cycles / n, 3),
            "tlb_misses_per_call": round(c.tlb_misses / n, 4),
            "tlb_misses_per_100k": round(c.tlb_misses * 100_000 / n, 1),
            "cache_misses_per_call": round(c.cache_misses / n, 4),
            "breakdown": per(c, n),
            "counts": dict(c.counts),
        }

    def to_lines(self, profile: Profile) -> list[str]:
        """The scenario's report for people."""
        out = self.to_json(profile)
        return [
            f"getpid, {self.mode}, {self.calls} calls, profile {profile.name}",
            f"  cycles per call      {out['cycles_per_call']}",
            f"  TLB misses per call  {out['tlb_misses_per_call']}  "
            f"(per 100k calls: {out['tlb_misses_per_100k']})",
            f"  cache misses / call  {out['cache_misses_per_call']}",
            "  breakdown (cycles per call):",
            *(f"    {k:<14}{v:>10.1f}" for k, v in per(self.cost, self.calls).items()),
        ]


def record(mode: str, calls: int, edition: str = DEFAULT_EDITION.name) -> tuple[Event, ...]:
    """Run the actors: one process makes ``calls`` getpid calls; the loop's trace."""
    return syscall_loop("getpid", mode, calls, edition)


def measure(
    mode: str, calls: int, profile: Profile, edition: str = DEFAULT_EDITION.name
) -> GetpidRun:
    """Record and price ``calls`` getpid calls in ``mode``."""
    return GetpidRun(mode=mode, calls=calls, cost=priced(record(mode, calls, edition), profile))


def setup(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the scenario's arguments."""
    parser = scenario_parser("getpid", __doc__)
    parser.add_argument("--mode", choices=MODES, default="l4linux", help="native Linux or L4Linux")
    parser.add_argument(
        "-n", "--calls", type=positive_int, default=CALLS, help="getpid calls to make"
    )
    return parser.parse_args(argv)


def report(args: argparse.Namespace, profile: Profile) -> GetpidRun:
    """``l4sim run getpid``: the run its arguments ask for."""
    return measure(args.mode, args.calls, profile, args.edition)


main = script_main("getpid", setup, report)


if __name__ == "__main__":
    raise SystemExit(main(None))
