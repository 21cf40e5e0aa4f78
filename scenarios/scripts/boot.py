"""boot: the task server's init, "get every task only to count it", against asking once.

The seed (second post): at initialisation the task server "got all available tasks from
the resource manager (RMGR). However it does all these requests only to get informed
about how many tasks are in the system. It then returns these tasks to RMGR
immediately."  The scenario prices that init (per managed task: RMGR ``get_task``,
``l4_task_new`` back to RMGR, RMGR ``free_task``) against the alternative the seed
implies: one ``TaskCount`` request to RMGR.  Both are recorded from the actors; the
ratio is a prediction (no constant is calibrated against it).

Run alone: ``python -m scenarios.scripts.boot --managed 64 --json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION
from protocols.task_server import DEFAULT_MANAGED
from protocols.trace import IpcCall, Syscall
from scenarios._common import (
    per,
    positive_int,
    priced,
    scenario_parser,
    script_main,
)
from scenarios.cost.machine import Cost
from scenarios.cost.profile import Profile
from scenarios.record.traces import boot_init

__all__ = ["BootRun", "MANAGED", "main", "measure", "setup"]

MANAGED: Final = DEFAULT_MANAGED
"""Task numbers the task server manages (L4Env's default)."""


@attrs.frozen(kw_only=True)
class BootRun:
    """The two inits, priced."""

    managed: int
    every: Cost
    count: Cost
    every_ipc: int
    count_ipc: int
    every_syscalls: int

    def to_json(self, profile: Profile) -> dict[str, object]:
        """The scenario's JSON object."""
        return {
            "scenario": "boot",
            "managed": self.managed,
            "profile": profile.name,
            "get_every_task": {
                "cycles": self.every.cycles,
                "ipc": self.every_ipc,
                "syscalls": self.every_syscalls,
                "tlb_misses": self.every.tlb_misses,
                "breakdown": per(self.every, 1),
            },
            "ask_count": {
                "cycles": self.count.cycles,
                "ipc": self.count_ipc,
                "tlb_misses": self.count.tlb_misses,
                "breakdown": per(self.count, 1),
            },
            "saved_cycles": self.every.cycles - self.count.cycles,
            "ratio": round(self.every.cycles / self.count.cycles, 2),
        }

    def to_lines(self, profile: Profile) -> list[str]:
        """The scenario's report for people."""
        mhz = profile.get_int("cpu.mhz")
        every, count = self.every.cycles, self.count.cycles
        return [
            f"task server init, {self.managed} managed tasks, profile {profile.name}",
            f"  get every task:  {every:>10} cycles ({every / mhz:.0f} us), "
            f"{self.every_ipc} IPC calls, {self.every_syscalls} system calls",
            f"  ask the count:   {count:>10} cycles ({count / mhz:.1f} us), "
            f"{self.count_ipc} IPC call",
            f"  the count is {self.to_json(profile)['ratio']}x cheaper",
        ]


def measure(managed: int, profile: Profile, edition: str = DEFAULT_EDITION.name) -> BootRun:
    """Record and price both inits of a task server managing ``managed`` tasks."""
    every, count = boot_init(False, managed, edition), boot_init(True, managed, edition)
    return BootRun(
        managed=managed,
        every=priced(every, profile),
        count=priced(count, profile),
        every_ipc=sum(1 for e in every if type(e) is IpcCall),
        count_ipc=sum(1 for e in count if type(e) is IpcCall),
        every_syscalls=sum(1 for e in every if type(e) is Syscall),
    )


def setup(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the scenario's arguments."""
    parser = scenario_parser("boot", __doc__)
    parser.add_argument(
        "--managed",
        type=positive_int,
        default=MANAGED,
        help="task numbers the task server manages",
    )
    return parser.parse_args(argv)


def report(args: argparse.Namespace, profile: Profile) -> BootRun:
    """``l4sim run boot``: the run its arguments ask for."""
    return measure(args.managed, profile, args.edition)


main = script_main("boot", setup, report)


if __name__ == "__main__":
    raise SystemExit(main(None))
