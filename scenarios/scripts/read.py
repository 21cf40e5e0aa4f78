"""read: a blocking ``sys_read()``, and the share of it L4Linux's IPC overhead costs.

Covers ``read.blocking.cycles`` (~2.7 million cycles, the seed) and the
seed's argument that "losing 3,500 cycles for a system call is not a lot" next to it.
The process reads one page; the Linux server (natively: the kernel) runs ``sys_read``
and then waits for the data (``wait.read``, the one constant calibrated against the
seed's figure).  The same loop is priced on L4Linux and natively; the difference is what
the IPC path costs, and its share of the L4Linux read is the scenario's prediction.

Run alone: ``python -m scenarios.scripts.read --json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION
from scenarios._common import (
    per,
    positive_int,
    priced,
    scenario_parser,
    script_main,
)
from scenarios.cost.machine import Cost
from scenarios.cost.profile import Profile
from scenarios.record.traces import syscall_loop

__all__ = ["READS", "ReadRun", "main", "measure", "setup"]

READS: Final = 20
"""Blocking reads per run: each waits ~1 timer tick, so a few dozen average the timer."""


@attrs.frozen(kw_only=True)
class ReadRun:
    """The same blocking reads priced on L4Linux and natively."""

    reads: int
    l4linux: Cost
    native: Cost

    @property
    def cycles(self) -> float:
        """Cycles per blocking read on L4Linux (the seed's figure)."""
        return self.l4linux.cycles / self.reads

    @property
    def overhead(self) -> float:
        """Extra cycles per read on L4Linux over native Linux."""
        return (self.l4linux.cycles - self.native.cycles) / self.reads

    def to_json(self, profile: Profile) -> dict[str, object]:
        """The scenario's JSON object."""
        return {
            "scenario": "read",
            "reads": self.reads,
            "profile": profile.name,
            "cycles_per_read": round(self.cycles, 1),
            "native_cycles_per_read": round(self.native.cycles / self.reads, 1),
            "l4linux_overhead_cycles": round(self.overhead, 1),
            "l4linux_overhead_share": round(self.overhead / self.cycles, 6),
            "breakdown": per(self.l4linux, self.reads),
        }

    def to_lines(self, profile: Profile) -> list[str]:
        """The scenario's report for people."""
        out = self.to_json(profile)
        return [
            f"blocking read of a page, {self.reads} reads, profile {profile.name}",
            f"  cycles per read on L4Linux   {out['cycles_per_read']:>14}",
            f"  cycles per read natively     {out['native_cycles_per_read']:>14}",
            f"  L4Linux IPC overhead         {out['l4linux_overhead_cycles']:>14}  "
            f"({float(out['l4linux_overhead_share']):.3%} of the read)",  # type: ignore[arg-type]
            "  breakdown on L4Linux (cycles per read):",
            *(f"    {k:<14}{v:>14.1f}" for k, v in per(self.l4linux, self.reads).items()),
        ]


def measure(reads: int, profile: Profile, edition: str = DEFAULT_EDITION.name) -> ReadRun:
    """Record and price ``reads`` blocking reads natively and on L4Linux."""
    return ReadRun(
        reads=reads,
        l4linux=priced(syscall_loop("read", "l4linux", reads, edition), profile),
        native=priced(syscall_loop("read", "native", reads), profile),
    )


def setup(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the scenario's arguments."""
    parser = scenario_parser("read", __doc__)
    parser.add_argument(
        "-n", "--reads", type=positive_int, default=READS, help="blocking reads to make"
    )
    return parser.parse_args(argv)


def report(args: argparse.Namespace, profile: Profile) -> ReadRun:
    """``l4sim run read``: the run its arguments ask for."""
    return measure(args.reads, profile, args.edition)


main = script_main("read", setup, report)


if __name__ == "__main__":
    raise SystemExit(main(None))
